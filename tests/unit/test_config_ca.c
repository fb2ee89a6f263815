/* Unit tests for config_choose_ca_file: the run-time choice of the CA
 * bundle (LAMBDA_TRACER_CA_FILE, then Amazon Linux's path, then Debian's). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

/* A fake file system: the paths that are readable, and a record of every
 * path asked about, in order. */
struct fake_fs {
    const char *readable[4];
    const char *asked[8];
    int n_asked;
};

static bool fake_readable(const char *path, void *ctx)
{
    struct fake_fs *fs = ctx;
    if (fs->n_asked < 8)
        fs->asked[fs->n_asked++] = path;
    for (int i = 0; i < 4 && fs->readable[i] != NULL; i++)
        if (strcmp(fs->readable[i], path) == 0)
            return true;
    return false;
}

static void test_override_wins_when_readable(void **state)
{
    struct fake_fs fs = {.readable = {"/opt/my-ca.pem", CONFIG_CA_FILE_AMAZON_LINUX, CONFIG_CA_FILE_DEBIAN}};
    char ret[256];
    (void)state;
    assert_int_equal(config_choose_ca_file("/opt/my-ca.pem", fake_readable, &fs, ret, sizeof(ret)), 0);
    assert_string_equal(ret, "/opt/my-ca.pem");
    assert_int_equal(fs.n_asked, 1); /* stops at the first readable one */
}

static void test_amazon_linux_path_before_debian(void **state)
{
    struct fake_fs fs = {.readable = {CONFIG_CA_FILE_DEBIAN, CONFIG_CA_FILE_AMAZON_LINUX}};
    char ret[256];
    (void)state;
    assert_int_equal(config_choose_ca_file(NULL, fake_readable, &fs, ret, sizeof(ret)), 0);
    assert_string_equal(ret, "/etc/pki/tls/certs/ca-bundle.crt");
    assert_int_equal(fs.n_asked, 1);

    /* An empty override is "unset" too: it is not even looked at. */
    memset(&fs.asked, 0, sizeof(fs.asked));
    fs.n_asked = 0;
    assert_int_equal(config_choose_ca_file("", fake_readable, &fs, ret, sizeof(ret)), 0);
    assert_string_equal(ret, CONFIG_CA_FILE_AMAZON_LINUX);
    assert_string_equal(fs.asked[0], CONFIG_CA_FILE_AMAZON_LINUX);
}

static void test_debian_path_when_amazon_linux_missing(void **state)
{
    struct fake_fs fs = {.readable = {CONFIG_CA_FILE_DEBIAN}};
    char ret[256];
    (void)state;
    assert_int_equal(config_choose_ca_file(NULL, fake_readable, &fs, ret, sizeof(ret)), 0);
    assert_string_equal(ret, "/etc/ssl/certs/ca-certificates.crt");
    assert_int_equal(fs.n_asked, 2);
    assert_string_equal(fs.asked[0], CONFIG_CA_FILE_AMAZON_LINUX);
    assert_string_equal(fs.asked[1], CONFIG_CA_FILE_DEBIAN);
}

static void test_unreadable_override_falls_back_in_order(void **state)
{
    struct fake_fs fs = {.readable = {CONFIG_CA_FILE_AMAZON_LINUX}};
    char ret[256];
    (void)state;
    assert_int_equal(config_choose_ca_file("/opt/typo.pem", fake_readable, &fs, ret, sizeof(ret)), 0);
    assert_string_equal(ret, CONFIG_CA_FILE_AMAZON_LINUX);
    assert_int_equal(fs.n_asked, 2);
    assert_string_equal(fs.asked[0], "/opt/typo.pem");
    assert_string_equal(fs.asked[1], CONFIG_CA_FILE_AMAZON_LINUX);
}

static void test_none_readable(void **state)
{
    struct fake_fs fs = {0};
    char ret[256] = "stale";
    (void)state;
    assert_int_equal(config_choose_ca_file("/opt/missing.pem", fake_readable, &fs, ret, sizeof(ret)),
                     -ENOENT);
    assert_string_equal(ret, "");
    assert_int_equal(fs.n_asked, 3);
}

static void test_path_longer_than_output_is_skipped(void **state)
{
    char long_path[64];
    struct fake_fs fs = {.readable = {long_path, CONFIG_CA_FILE_AMAZON_LINUX}};
    char small[40];
    (void)state;
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    /* The override does not fit: never truncated into another path. */
    assert_int_equal(config_choose_ca_file(long_path, fake_readable, &fs, small, sizeof(small)), 0);
    assert_string_equal(small, CONFIG_CA_FILE_AMAZON_LINUX);
    /* Exactly one byte short for the NUL: skipped as well. */
    char tight[sizeof(CONFIG_CA_FILE_AMAZON_LINUX) - 1];
    fs.readable[0] = CONFIG_CA_FILE_AMAZON_LINUX;
    fs.readable[1] = NULL;
    assert_int_equal(config_choose_ca_file(NULL, fake_readable, &fs, tight, sizeof(tight)), -ENOENT);
    assert_string_equal(tight, "");
    /* No room at all: nothing written, nothing found. */
    assert_int_equal(config_choose_ca_file(NULL, fake_readable, &fs, tight, 0), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_override_wins_when_readable),
        cmocka_unit_test(test_amazon_linux_path_before_debian),
        cmocka_unit_test(test_debian_path_when_amazon_linux_missing),
        cmocka_unit_test(test_unreadable_override_falls_back_in_order),
        cmocka_unit_test(test_none_readable),
        cmocka_unit_test(test_path_longer_than_output_is_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
