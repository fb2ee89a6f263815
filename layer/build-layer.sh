#!/usr/bin/env bash
# layer/build-layer.sh: the release build, one fully static musl binary per
# architecture, packed as a Lambda layer.  Normally run through
# `./build.sh layer [x86_64|arm64]...`, which installs the Debian packages
# this needs first.
#
#   layer/build-layer.sh [--out DIR] ARCH...
#
# Steps, each cached under build/layer/ so a rebuild takes seconds:
#   1. fetch the pinned Debian source packages (layer/sources.lock) with
#      `apt-get source` through a private sources list and state directory
#      (the machine's apt configuration is read for its mirror, never changed);
#   2. compile mbedTLS, libcurl (HTTP and HTTPS only), cJSON and zlib
#      (deflate only) with the
#      architecture's musl compiler into build/layer/deps/ARCH, stamped with
#      a key over everything that shapes the result;
#   3. `make release ARCH=...` (the extension, plain -static: Debian's musl
#      specs get -static-pie wrong);
#   4. pack DIR/lambda-tracer-ARCH.zip (default DIR: build/layer) with fixed
#      times, modes and order, so the same tree gives the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

REPO=$PWD
TOP=$REPO/build/layer
LOCK=$REPO/layer/sources.lock
OUT=$TOP
JOBS=${JOBS:-2}

say() { printf '==> %s\n' "$*"; }
die() { printf 'layer: %s\n' "$*" >&2; exit 1; }

# --- per-architecture toolchain -------------------------------------------

# Sets CC, AR, RANLIB, STRIP, HOST for ARCH (x86_64 or arm64).
toolchain() {
    case "$1" in
        x86_64)
            CC=musl-gcc AR=ar RANLIB=ranlib STRIP=strip HOST=x86_64-linux-musl MUSL_PKG=musl-dev ;;
        arm64)
            CC=aarch64-linux-musl-gcc AR=aarch64-linux-gnu-ar RANLIB=aarch64-linux-gnu-ranlib
            STRIP=aarch64-linux-gnu-strip HOST=aarch64-linux-musl MUSL_PKG=musl-dev:arm64 ;;
        *) die "unknown architecture '$1' (x86_64 or arm64)" ;;
    esac
    command -v "$CC" >/dev/null || die "$CC not found: run ./build.sh layer, which installs it"
}

# --- 1. sources --------------------------------------------------------------

# Field N of the lock's lines for one package.
lock_field() { awk -v p="$1" -v n="$2" '$1 == p { print $n; exit }' "$LOCK"; }

sources_ok() {
    local pkg ver file sum
    while read -r pkg ver file sum; do
        case "$pkg" in ''|'#'*) continue ;; esac
        [ -f "$TOP/src/$file" ] || return 1
        echo "$sum  $TOP/src/$file" | sha256sum --quiet -c - 2>/dev/null || return 1
    done <"$LOCK"
}

# The Debian release whose source packages layer/sources.lock pins: the
# current stable, whatever the build machine itself runs.
SUITE=trixie

# deb-src lines for $SUITE, $SUITE-updates and $SUITE-security, on the
# mirrors the machine's own apt uses for its Debian suites (the same URIs,
# the suite names swapped).
private_sources() {
    local lines
    lines=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 2>/dev/null |
        awk -v s="$SUITE" '$3 == "main" && $2 ~ /^(buster|bullseye|bookworm|trixie|forky)(-updates|-security)?$/ {
            sub(/^[a-z]+/, s, $2); print }' | sort -u)
    if [ -z "$lines" ]; then
        lines="http://deb.debian.org/debian/ $SUITE main
http://deb.debian.org/debian/ $SUITE-updates main
http://deb.debian.org/debian-security/ $SUITE-security main"
    fi
    printf '%s\n' "$lines" | while read -r uri suite comp; do
        echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite $comp"
    done
}

fetch_sources() {
    if sources_ok; then
        return 0
    fi
    say "fetching pinned Debian sources (private apt state in build/layer/apt)"
    local apt=$TOP/apt
    mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$TOP/src"
    private_sources >"$apt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts"
        -o "Dir::State=$apt/state" -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=1
        -o APT::Sandbox::User=root -qq)
    apt-get "${opts[@]}" update >/dev/null
    local specs=()
    for pkg in $(awk '$1 !~ /^#/ && NF { print $1 }' "$LOCK" | sort -u); do
        specs+=("$pkg=$(lock_field "$pkg" 2)")
    done
    # One package at a time: apt takes a version listed in both the release
    # and its -security pocket from -security, whose pool may not hold it
    # (zlib's trixie version on 2026-12-02); such a package is fetched again
    # with the -security lines left out.  Every file is hash-checked below
    # either way.
    grep -v -- '-security ' "$apt/sources.list" >"$apt/sources-nosec.list" || true
    local spec
    for spec in "${specs[@]}"; do
        (cd "$TOP/src" && { apt-get "${opts[@]}" source --download-only "$spec" >/dev/null 2>&1 ||
            apt-get "${opts[@]}" -o "Dir::Etc::SourceList=$apt/sources-nosec.list" \
                source --download-only "$spec" >/dev/null; }) ||
            die "apt-get source $spec failed: a pinned version may have left the archive; see layer/sources.lock"
    done
    sources_ok || {
        local pkg ver file sum
        while read -r pkg ver file sum; do
            case "$pkg" in ''|'#'*) continue ;; esac
            echo "$sum  $TOP/src/$file" | sha256sum --quiet -c - 2>/dev/null || echo "  $file: hash differs or missing" >&2
        done <"$LOCK"
        die "downloaded sources do not match layer/sources.lock"
    }
}

# Unpacks PKG's .dsc (hash-checked above) into build/layer/src/PKG-VERSION
# once; prints that directory.
unpack() {
    local pkg=$1 ver dir
    ver=$(lock_field "$pkg" 2)
    ver=${ver#*:} # an epoch ("1:") is part of the version, never of file names
    dir=$TOP/src/$pkg-$ver
    if [ ! -f "$dir/.unpacked" ]; then
        rm -rf "$dir"
        # dpkg-source warns that it cannot check the uploader's signature
        # (no keyring here); the pinned hashes stand in for it.
        (cd "$TOP/src" && dpkg-source -q -x "${pkg}_${ver}.dsc" "$dir" >/dev/null 2>&1) ||
            die "dpkg-source -x ${pkg}_${ver}.dsc failed"
        if [ "$pkg" = curl ]; then
            # Debian's ZZZgnutls-build.patch renames the library for its
            # GnuTLS flavour; take it back out and regenerate the build
            # files (Debian's other patches change configure.ac too, and
            # Debian's own build runs autoreconf as well).
            patch -s -R -p1 -d "$dir" <"$dir/debian/patches/ZZZgnutls-build.patch" ||
                die "cannot reverse ZZZgnutls-build.patch"
            (cd "$dir" && autoreconf -fi >/dev/null 2>&1) || die "autoreconf failed in $dir"
        fi
        touch "$dir/.unpacked"
    fi
    echo "$dir"
}

# --- 2. dependencies ---------------------------------------------------------

# Compiler flags for the libraries.  The file prefix maps keep build paths
# out of the objects, so the result does not depend on where the tree is.
# No unwind tables (as the Makefile's release flags): C on musl never
# unwinds, and .eh_frame is a tenth of the binary.
dep_cflags() { # SRCDIR NAME
    echo "-O2 -ffunction-sections -fdata-sections -fstack-protector-strong -fno-asynchronous-unwind-tables -fno-unwind-tables -ffile-prefix-map=$1=$2 -ffile-prefix-map=$TOP=build"
}

build_mbedtls() { # ARCH PREFIX
    local src work
    src=$(unpack mbedtls)
    work=$TOP/work/$1/mbedtls
    rm -rf "$work" && mkdir -p "$work" && cp -a "$src/." "$work/"
    (
        cd "$work"
        # Client side only: no server, no DTLS, no self test, debug, socket
        # or timing modules, no key storage (PSA's file store).  TLS 1.2
        # and 1.3 (Mbed TLS 3 has nothing older; 1.3 goes through PSA
        # crypto, which the handshake initialises itself since 3.6.1), no
        # renegotiation.  What HTTPS servers use today is kept: ECDHE (and
        # RSA key transport) with AES-GCM, AES-CBC, AES-CCM, ChaCha20-Poly1305;
        # curves P-256, P-384, P-521 and X25519.  Left out, to keep the zip
        # small: finite-field DHE, static ECDH, PSK key exchanges, Camellia,
        # ARIA, DES, RIPEMD-160, SHA-3, the other curves, PKCS#5/#12 (for
        # encrypted private keys, which the extension never reads).
        # Pthread locking as Debian configures it.
        # config.py says nothing when a name is unknown, so each one is
        # checked against the header first: a typo or a renamed option
        # stops the build.
        local cfg=include/mbedtls/mbedtls_config.h opt
        for opt in MBEDTLS_SSL_SRV_C MBEDTLS_SSL_PROTO_DTLS MBEDTLS_SSL_DTLS_ANTI_REPLAY \
                   MBEDTLS_SSL_DTLS_HELLO_VERIFY MBEDTLS_SSL_DTLS_CLIENT_PORT_REUSE \
                   MBEDTLS_SSL_DTLS_CONNECTION_ID MBEDTLS_SSL_DTLS_SRTP MBEDTLS_SSL_EARLY_DATA \
                   MBEDTLS_SELF_TEST MBEDTLS_DEBUG_C MBEDTLS_SSL_CACHE_C MBEDTLS_SSL_COOKIE_C \
                   MBEDTLS_SSL_TICKET_C MBEDTLS_NET_C MBEDTLS_TIMING_C \
                   MBEDTLS_PSA_CRYPTO_STORAGE_C MBEDTLS_PSA_ITS_FILE_C \
                   MBEDTLS_SSL_RENEGOTIATION MBEDTLS_SSL_CONTEXT_SERIALIZATION \
                   MBEDTLS_KEY_EXCHANGE_PSK_ENABLED MBEDTLS_KEY_EXCHANGE_DHE_PSK_ENABLED \
                   MBEDTLS_KEY_EXCHANGE_ECDHE_PSK_ENABLED MBEDTLS_KEY_EXCHANGE_RSA_PSK_ENABLED \
                   MBEDTLS_KEY_EXCHANGE_DHE_RSA_ENABLED MBEDTLS_KEY_EXCHANGE_ECDH_ECDSA_ENABLED \
                   MBEDTLS_KEY_EXCHANGE_ECDH_RSA_ENABLED MBEDTLS_DHM_C \
                   MBEDTLS_CAMELLIA_C MBEDTLS_ARIA_C MBEDTLS_DES_C MBEDTLS_RIPEMD160_C MBEDTLS_SHA3_C \
                   MBEDTLS_PKCS5_C MBEDTLS_PKCS12_C \
                   MBEDTLS_ECP_DP_SECP192R1_ENABLED MBEDTLS_ECP_DP_SECP224R1_ENABLED \
                   MBEDTLS_ECP_DP_SECP192K1_ENABLED MBEDTLS_ECP_DP_SECP224K1_ENABLED \
                   MBEDTLS_ECP_DP_SECP256K1_ENABLED MBEDTLS_ECP_DP_BP256R1_ENABLED \
                   MBEDTLS_ECP_DP_BP384R1_ENABLED MBEDTLS_ECP_DP_BP512R1_ENABLED \
                   MBEDTLS_ECP_DP_CURVE448_ENABLED \
                   -MBEDTLS_THREADING_C -MBEDTLS_THREADING_PTHREAD \
                   -MBEDTLS_SSL_PROTO_TLS1_2 -MBEDTLS_SSL_PROTO_TLS1_3 \
                   -MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE -MBEDTLS_SSL_SESSION_TICKETS \
                   -MBEDTLS_ECP_DP_SECP256R1_ENABLED -MBEDTLS_ECP_DP_SECP384R1_ENABLED \
                   -MBEDTLS_ECP_DP_SECP521R1_ENABLED -MBEDTLS_ECP_DP_CURVE25519_ENABLED; do
            grep -Eq "^(//)?#define ${opt#-}( |\$)" "$cfg" || die "mbedTLS has no option ${opt#-}"
            case "$opt" in
                -*) python3 scripts/config.py set "${opt#-}" ;;
                *) python3 scripts/config.py unset "$opt" ;;
            esac
        done
        # Entropy: Mbed TLS 3 calls getrandom() only under glibc; elsewhere
        # (musl) it reads a device file, by default /dev/random (2.28 read
        # /dev/urandom).  /dev/random blocks on kernels before 5.6 while the
        # pool is low, and it is one more file the runtime's root must
        # have; /dev/urandom, as before, never blocks and Lambda is no
        # device fresh from boot.
        grep -q '^//#define MBEDTLS_PLATFORM_DEV_RANDOM ' "$cfg" || die "mbedTLS has no option MBEDTLS_PLATFORM_DEV_RANDOM"
        python3 scripts/config.py set MBEDTLS_PLATFORM_DEV_RANDOM '"/dev/urandom"'
        grep -q '^#define MBEDTLS_PLATFORM_DEV_RANDOM "/dev/urandom"' "$cfg" || die "MBEDTLS_PLATFORM_DEV_RANDOM not set"
        make -s -C library -j"$JOBS" CC="$CC" AR="$AR" RANLIB="$RANLIB" \
            CFLAGS="$(dep_cflags "$work" mbedtls)" static >/dev/null
        mkdir -p "$2/lib" "$2/include"
        cp library/libmbedtls.a library/libmbedx509.a library/libmbedcrypto.a "$2/lib/"
        cp -r include/mbedtls include/psa "$2/include/"
        cp LICENSE "$2/LICENSE.mbedtls"
    )
}

build_curl() { # ARCH PREFIX
    local src work
    src=$(unpack curl)
    work=$TOP/work/$1/curl
    rm -rf "$work" && mkdir -p "$work"
    (
        cd "$work"
        # Everything but HTTP(S) off; no optional library; no CA path baked
        # in from the build machine (the extension picks the file at run
        # time).  pkg-config is kept away from the host's libraries.  No
        # proxy support (the extension sets CURLOPT_NOPROXY "*"), no
        # verbose strings (failf still fills CURLOPT_ERRORBUFFER), no HTTP
        # authentication but Basic and SigV4.
        PKG_CONFIG=false CC="$CC" AR="$AR" RANLIB="$RANLIB" \
        CFLAGS="$(dep_cflags "$src" curl) -Os" CPPFLAGS="-I$2/include" LDFLAGS="-L$2/lib" \
        "$src/configure" --quiet --build="$(gcc -dumpmachine)" --host="$HOST" --prefix="$2" \
            --disable-shared --enable-static --disable-dependency-tracking \
            --with-mbedtls="$2" --without-openssl --without-gnutls --without-wolfssl \
            --without-ca-bundle --without-ca-path --without-ca-fallback \
            --without-zlib --without-brotli --without-zstd --without-libidn2 --without-libpsl \
            --without-nghttp2 --without-nghttp3 --without-ngtcp2 --without-quiche --without-msh3 \
            --without-libssh2 --without-libssh --without-wolfssh --without-librtmp --without-libgsasl \
            --without-gssapi --without-libuv --without-rustls --without-bearssl --disable-ares \
            --disable-ldap --disable-ldaps --disable-rtsp --disable-dict \
            --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp \
            --disable-gopher --disable-mqtt --disable-ftp --disable-file --disable-websockets \
            --disable-manual --disable-docs --disable-libcurl-option --disable-ntlm \
            --disable-tls-srp --disable-cookies --disable-alt-svc --disable-hsts --disable-doh \
            --disable-mime --disable-form-api --disable-netrc --disable-progress-meter --disable-dnsshuffle \
            --disable-get-easy-options --disable-headers-api --disable-unix-sockets \
            --disable-ech --disable-httpsrr --disable-ssls-export --disable-ipfs \
            --disable-proxy --disable-verbose --disable-digest-auth --disable-bearer-auth \
            --disable-kerberos-auth --disable-negotiate-auth --disable-sha512-256 --disable-bindlocal \
            --enable-threaded-resolver --enable-ipv6 >configure.log 2>&1 ||
            { tail -n 40 configure.log >&2; die "curl configure failed (build/layer/work/$1/curl/config.log)"; }
        # An option configure does not know is only a warning: a renamed
        # one would silently leave its feature on.
        ! grep -q 'unrecognized options' configure.log ||
            die "curl configure: $(grep 'unrecognized options' configure.log)"
        grep -q '^#define USE_MBEDTLS 1' lib/curl_config.h || die "curl configure did not pick mbedTLS"
        ! grep -q '^#define CURL_DISABLE_AWS 1' lib/curl_config.h || die "curl configure left out SigV4"
        grep -q '^#define USE_THREADS_POSIX 1' lib/curl_config.h || die "curl configure left out the threaded resolver"
        make -s -C lib -j"$JOBS" >/dev/null
        make -s -C lib install >/dev/null
        make -s -C include install >/dev/null
        cp "$src/COPYING" "$2/LICENSE.curl"
    )
}

build_cjson() { # ARCH PREFIX
    local src
    src=$(unpack cjson)
    mkdir -p "$TOP/work/$1/cjson" "$2/lib" "$2/include/cjson"
    # shellcheck disable=SC2046
    "$CC" $(dep_cflags "$src" cjson) -std=c89 -c "$src/cJSON.c" -o "$TOP/work/$1/cjson/cJSON.o"
    rm -f "$2/lib/libcjson.a"
    "$AR" rcD "$2/lib/libcjson.a" "$TOP/work/$1/cjson/cJSON.o"
    cp "$src/cJSON.h" "$2/include/cjson/"
    cp "$src/LICENSE" "$2/LICENSE.cjson"
}

build_zlib() { # ARCH PREFIX
    local src work obj
    src=$(unpack zlib)
    work=$TOP/work/$1/zlib
    rm -rf "$work" && mkdir -p "$work" "$2/lib" "$2/include"
    # Deflate only (gzip_body compresses; nothing here inflates), for size:
    # -Os, and the CRC tables computed at first use (DYNAMIC_CRC_TABLE: zlib
    # builds them once under C11 atomics) instead of 8 KB of constants.
    for obj in adler32 crc32 deflate trees zutil; do
        # shellcheck disable=SC2046
        "$CC" $(dep_cflags "$src" zlib) -Os -DDYNAMIC_CRC_TABLE -c "$src/$obj.c" -o "$work/$obj.o"
    done
    rm -f "$2/lib/libz.a"
    "$AR" rcD "$2/lib/libz.a" "$work"/adler32.o "$work"/crc32.o "$work"/deflate.o "$work"/trees.o "$work"/zutil.o
    cp "$src/zlib.h" "$src/zconf.h" "$2/include/"
    cp "$src/LICENSE" "$2/LICENSE.zlib"
}

# A key over everything that shapes the libraries: the pinned sources, the
# functions above that unpack and compile them, the compiler and musl
# versions.  Packaging changes below do not force a rebuild.
deps_key() {
    {
        cat "$LOCK"
        declare -f unpack dep_cflags build_mbedtls build_curl build_cjson build_zlib
        "$CC" -dumpfullversion -dumpmachine 2>&1
        dpkg-query -W -f='${Version}\n' "$MUSL_PKG" 2>/dev/null || echo no-musl-pkg
    } | sha256sum | cut -c1-16
}

build_deps() { # ARCH
    local prefix=$TOP/deps/$1 key
    key=$(deps_key)
    if [ -f "$prefix/.stamp" ] && [ "$(cat "$prefix/.stamp")" = "$key" ]; then
        return 0
    fi
    say "building static mbedTLS, libcurl, cJSON and zlib for $1 (once; cached in build/layer/deps/$1)"
    rm -rf "$prefix" && mkdir -p "$prefix"
    build_mbedtls "$1" "$prefix"
    build_curl "$1" "$prefix"
    build_cjson "$1" "$prefix"
    build_zlib "$1" "$prefix"
    echo "$key" >"$prefix/.stamp"
}

# --- 3 and 4. binary and zip -------------------------------------------------

notices() { # PREFIX
    local pfx=$1
    cat "$REPO/layer/NOTICE"
    printf '\n\n==== curl %s: COPYING ====\n\n' "$(lock_field curl 2)"
    cat "$pfx/LICENSE.curl"
    printf '\n\n==== Mbed TLS %s: LICENSE (Apache-2.0 OR GPL-2.0-or-later; used under Apache-2.0) ====\n\n' \
        "$(lock_field mbedtls 2)"
    cat "$pfx/LICENSE.mbedtls"
    printf '\n\n==== cJSON %s: LICENSE ====\n\n' "$(lock_field cjson 2)"
    cat "$pfx/LICENSE.cjson"
    printf '\n\n==== zlib %s: LICENSE ====\n\n' "$(lock_field zlib 2)"
    cat "$pfx/LICENSE.zlib"
    printf '\n\n==== musl %s: Debian copyright file ====\n\n' \
        "$(dpkg-query -W -f='${Version}' "$MUSL_PKG" 2>/dev/null)"
    cat /usr/share/doc/musl-dev/copyright
}

# The time stamped on every zip entry: SOURCE_DATE_EPOCH, else the last
# commit's time, so the same commit always gives the same bytes.
source_date() {
    if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
        echo "$SOURCE_DATE_EPOCH"
    elif git -C "$REPO" log -1 --format=%ct >/dev/null 2>&1; then
        git -C "$REPO" log -1 --format=%ct
    else
        echo 1704067200 # 2024-01-01T00:00:00Z
    fi
}

package() { # ARCH
    local arch=$1 stage zip epoch
    make -s -j"$JOBS" release ARCH="$arch" DEPS="$TOP/deps/$arch" RELEASE_DIR="$RELEASE_DIR"
    stage=$OUT/stage-$arch
    zip=$OUT/lambda-tracer-$arch.zip
    rm -rf "$stage" "$zip"
    mkdir -p "$stage/extensions" "$stage/lambda-tracer"
    # The file name is the name the extension registers under.
    cp "$RELEASE_DIR/lambda-tracer" "$stage/extensions/lambda-tracer"
    notices "$TOP/deps/$arch" >"$stage/lambda-tracer/THIRD-PARTY-NOTICES.txt"
    find "$stage" -type d -exec chmod 0755 {} +
    find "$stage" -type f -exec chmod 0644 {} +
    chmod 0755 "$stage/extensions/lambda-tracer"
    epoch=$(source_date)
    find "$stage" -exec touch -h -d "@$epoch" {} +
    # -X: no uid/gid or extra time fields; TZ=UTC: zip stores local DOS
    # times; sorted names: the order does not depend on the file system.
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\./||' |
        TZ=UTC zip -q -X -9 -@ "$zip")
}

main() {
    local arches=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --out) OUT=$(realpath -m "$2"); shift 2 ;;
            --release-dir) RELEASE_DIR_OVERRIDE=$2; shift 2 ;;
            *) arches+=("$1"); shift ;;
        esac
    done
    [ ${#arches[@]} -gt 0 ] || arches=(x86_64 arm64)
    [ -f "$REPO/layer/NOTICE" ] || die "layer/NOTICE missing"
    mkdir -p "$TOP" "$OUT"
    fetch_sources
    for arch in "${arches[@]}"; do
        toolchain "$arch"
        RELEASE_DIR=${RELEASE_DIR_OVERRIDE:-build/release-$arch}
        build_deps "$arch"
        package "$arch"
        say "$OUT/lambda-tracer-$arch.zip: $(stat -c %s "$OUT/lambda-tracer-$arch.zip") bytes" \
            "(binary $(stat -c %s "$RELEASE_DIR/lambda-tracer") bytes stripped)"
    done
}

main "$@"
