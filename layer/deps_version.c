/* layer/deps_version.c: release builds only (the Makefile's release rule).
 *
 * One string in the static binary naming the libraries linked into it,
 * read from the headers installed beside them in DEPS, so a stale library
 * cache shows:  strings lambda-tracer | grep '^lambda-tracer deps:'
 * The link keeps it through --require-defined (nothing references it). */
#include <cjson/cJSON.h>
#include <curl/curlver.h>
#include <mbedtls/build_info.h>
#include <zlib.h>

#define LT_STR2(x) #x
#define LT_STR(x) LT_STR2(x)

extern const char lambda_tracer_deps[];
__attribute__((used)) const char lambda_tracer_deps[] =
    "lambda-tracer deps: libcurl/" LIBCURL_VERSION " " MBEDTLS_VERSION_STRING_FULL " cJSON/" LT_STR(
        CJSON_VERSION_MAJOR) "." LT_STR(CJSON_VERSION_MINOR) "." LT_STR(CJSON_VERSION_PATCH) " zlib/" ZLIB_VERSION;
