# lambda-tracer build.  Driven by build.sh; plain GNU make.
#
#   make                      development build: build/dev/lambda-tracer
#   make unit                 cmocka unit tests:  build/dev/unit/test_*
#   make fuzz-replay          corpus replay programs: build/dev/fuzz/replay_*
#   make SANITIZE=address     the same under ASan+UBSan, in build/asan/
#   make SANITIZE=thread      the same under TSan, in build/tsan/
#   make CC=clang fuzzers     libFuzzer targets: build/fuzz/fuzz_*
#   make release ARCH=x86_64|arm64 DEPS=DIR
#                             static musl binary: build/release-ARCH/lambda-tracer
#                             (stripped) and lambda-tracer.debug; DEPS holds the
#                             static libcurl, mbedTLS, cJSON and zlib (./build.sh layer
#                             builds them and then calls this)

CC ?= cc
SANITIZE ?=

WARNINGS := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wundef -Wwrite-strings -Wvla -Wimplicit-fallthrough -Werror
HARDENING := -D_FORTIFY_SOURCE=3 -fstack-protector-strong
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -O2 -g $(WARNINGS)
LDFLAGS_BASE := -Wl,-z,relro,-z,now
LIBS := -lcurl -lcjson -lz -lpthread -lm

ifeq ($(SANITIZE),address)
  BUILD := build/asan
  SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else ifeq ($(SANITIZE),thread)
  BUILD := build/tsan
  SAN := -fsanitize=thread -fno-omit-frame-pointer
else
  BUILD := build/dev
  SAN :=
endif
# _FORTIFY_SOURCE needs optimisation and conflicts with nothing here, but
# ASan replaces the checked functions, so keep it for the plain build only.
ifeq ($(SAN),)
  CFLAGS_ALL := $(CFLAGS_BASE) $(HARDENING)
else
  CFLAGS_ALL := $(CFLAGS_BASE) -fstack-protector-strong $(SAN)
endif

SRC := $(filter-out extension/main.c,$(wildcard extension/*.c))
OBJ := $(patsubst extension/%.c,$(BUILD)/obj/%.o,$(SRC))
# Unit tests link objects built with the failing-allocator seam.
UOBJ := $(patsubst extension/%.c,$(BUILD)/uobj/%.o,$(SRC))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BIN := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/fuzz/replay_%,$(FUZZ_SRC))
FUZZER_BIN := $(patsubst tests/fuzz/fuzz_%.c,build/fuzz/fuzz_%,$(FUZZ_SRC))

.PHONY: all extension unit fuzz-replay fuzzers floor clean
all: extension
extension: $(BUILD)/lambda-tracer

$(BUILD)/obj/%.o: extension/%.c extension/*.h | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/uobj/%.o: extension/%.c extension/*.h tests/unit/fail_alloc.h | $(BUILD)/uobj
	$(CC) $(CFLAGS_ALL) -include tests/unit/fail_alloc.h -c $< -o $@

$(BUILD)/lambda-tracer: extension/main.c $(OBJ) extension/*.h
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_BASE) extension/main.c $(OBJ) $(LIBS) -o $@

unit: $(UNIT_BIN)
$(BUILD)/unit/%: tests/unit/%.c tests/unit/fail_alloc.c tests/unit/*.h $(UOBJ) | $(BUILD)/unit
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -Iextension -Itests/unit $< tests/unit/fail_alloc.c \
		$(UOBJ) $(LIBS) -lcmocka -o $@

fuzz-replay: $(REPLAY_BIN)
$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c tests/fuzz/*.h $(OBJ) | $(BUILD)/fuzz
	$(CC) $(CFLAGS_ALL) -Iextension $< tests/fuzz/replay_main.c $(OBJ) $(LIBS) -o $@

fuzzers: $(FUZZER_BIN)
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(SRC) extension/*.h | build/fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iextension \
		$< $(SRC) $(LIBS) -o $@

# --- release: one fully static musl binary per architecture.  Plain -static:
# Debian's musl specs get -static-pie wrong (the binary asks for the musl
# loader).  musl has no _FORTIFY_SOURCE support, so it is left out here; the
# prefix map keeps the checkout's path out of the binary (reproducible bytes
# wherever the tree lives).
ARCH ?= x86_64
RELEASE_DIR ?= build/release-$(ARCH)
DEPS ?= build/layer/deps/$(ARCH)
ifeq ($(ARCH),arm64)
  RELEASE_CC := aarch64-linux-musl-gcc
  RELEASE_STRIP := aarch64-linux-gnu-strip
else ifeq ($(ARCH),x86_64)
  RELEASE_CC := musl-gcc
  RELEASE_STRIP := strip
else
  RELEASE_CC = $(error ARCH must be x86_64 or arm64, not $(ARCH))
endif
# No unwind tables: nothing in a C program on musl unwinds (no exceptions,
# musl's thread cancellation does not use them), and .eh_frame was 106 KB of
# the arm64 binary (about 10 KB of its zip for our objects alone).
NO_UNWIND := -fno-asynchronous-unwind-tables -fno-unwind-tables
RELEASE_CFLAGS := $(CFLAGS_BASE) -fstack-protector-strong -ffunction-sections -fdata-sections $(NO_UNWIND) \
	-ffile-prefix-map=$(CURDIR)=. -I$(DEPS)/include
RELEASE_LDFLAGS := -static -Wl,--gc-sections -Wl,-z,relro,-z,now -Wl,--build-id=sha1 -L$(DEPS)/lib
RELEASE_LIBS := -lcurl -lmbedtls -lmbedx509 -lmbedcrypto -lcjson -lz -lpthread -lm
RELEASE_OBJ := $(patsubst extension/%.c,$(RELEASE_DIR)/obj/%.o,$(SRC))

.PHONY: release
release: $(RELEASE_DIR)/lambda-tracer
$(DEPS)/include/curl/curl.h:
	@echo "release: $(DEPS) has no static libcurl; run ./build.sh layer" >&2; exit 1
$(RELEASE_DIR)/obj/%.o: extension/%.c extension/*.h $(DEPS)/include/curl/curl.h | $(RELEASE_DIR)/obj
	$(RELEASE_CC) $(RELEASE_CFLAGS) $(RELEASE_OPT) -c $< -o $@
# Code off the per-invocation path (settings, /proc snapshots taken only for
# slow, timing-out or cold invocations, the summary, cost and metrics code,
# credentials) is optimised for size: the zip's budget is 500 KB.
# apihttp too: a few hundred bytes of HTTP per Extensions API call, where
# -Os saves 2 KB and costs nothing measurable; and the tracer (one segment
# per invocation), where it saves 2.8 KB of the arm64 zip and measured no
# CPU cost per invocation (docs/performance.md, figure 6).
COLD_OBJ := config procsnap forensics initwatch apihttp extapi summary cost otlp_response credentials refusal emf tracer
$(patsubst %,$(RELEASE_DIR)/obj/%.o,$(COLD_OBJ)): RELEASE_OPT := -Os
# The libraries' versions, from their headers in DEPS, as one string in the
# binary (layer/deps_version.c); -isystem: their headers are not held to our
# warnings.
$(RELEASE_DIR)/obj/deps_version.o: layer/deps_version.c $(DEPS)/.stamp | $(RELEASE_DIR)/obj
	$(RELEASE_CC) $(RELEASE_CFLAGS) -isystem $(DEPS)/include -c $< -o $@
$(RELEASE_DIR)/lambda-tracer.debug: extension/main.c $(RELEASE_OBJ) $(RELEASE_DIR)/obj/deps_version.o $(DEPS)/.stamp
	$(RELEASE_CC) $(RELEASE_CFLAGS) $(RELEASE_LDFLAGS) -Wl,--require-defined=lambda_tracer_deps \
		extension/main.c $(RELEASE_OBJ) $(RELEASE_DIR)/obj/deps_version.o $(RELEASE_LIBS) -o $@
$(RELEASE_DIR)/lambda-tracer: $(RELEASE_DIR)/lambda-tracer.debug
	$(RELEASE_STRIP) --strip-all -o $@ $<
$(RELEASE_DIR)/obj:
	mkdir -p $@

$(BUILD)/obj $(BUILD)/uobj $(BUILD)/unit $(BUILD)/fuzz build/fuzz:
	mkdir -p $@

clean:
	rm -rf build
