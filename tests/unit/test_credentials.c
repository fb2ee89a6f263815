/* Unit tests for credentials.c: values that would add header lines are
 * refused wherever they come from. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "credentials.h"
#include "fail_alloc.h"

struct fake_env {
    const char *pairs[8][2];
};

static const char *fake_getenv(const char *name, void *ctx)
{
    struct fake_env *env = ctx;
    for (int i = 0; i < 8 && env->pairs[i][0] != NULL; i++)
        if (strcmp(env->pairs[i][0], name) == 0)
            return env->pairs[i][1];
    return NULL;
}

static const char *const hostile[] = {"\r\nX-Injected: 1", "\nX-Injected: 1", "\r", "\x01", "\x1f",
                                      "\x7f", "\t", " ", "\xc3\xa9", "\x85"};

static bool all_zero(const struct aws_credentials *c)
{
    static const struct aws_credentials zero;
    return memcmp(c, &zero, sizeof(*c)) == 0;
}

static void test_env_values_are_checked(void **state)
{
    struct aws_credentials c;
    char bad[64];
    (void)state;

    struct fake_env good = {.pairs = {{"AWS_ACCESS_KEY_ID", "ASIAXAMPLE"},
                                      {"AWS_SECRET_ACCESS_KEY", "wJalr/K7+MDENG=="},
                                      {"AWS_SESSION_TOKEN", "FQoGZXIvYXdz+/="}}};
    assert_int_equal(credentials_from_env(fake_getenv, &good, &c), 0);
    assert_string_equal(c.session_token, "FQoGZXIvYXdz+/=");
    for (size_t v = 0; v < 3; v++) {
        for (size_t h = 0; h < sizeof(hostile) / sizeof(hostile[0]); h++) {
            struct fake_env env = good;
            /* at the end, at the start, alone */
            for (int where = 0; where < 3; where++) {
                if (where == 0)
                    snprintf(bad, sizeof(bad), "ASIA%s", hostile[h]);
                else if (where == 1)
                    snprintf(bad, sizeof(bad), "%sASIA", hostile[h]);
                else
                    snprintf(bad, sizeof(bad), "%s", hostile[h]);
                env.pairs[v][1] = bad;
                memset(&c, 0x5a, sizeof(c));
                assert_int_equal(credentials_from_env(fake_getenv, &env, &c), -EINVAL);
                assert_true(all_zero(&c));
            }
        }
    }
}

/* Why the environment's credentials were refused: the variables, never
 * their values. */
static void test_env_problem_names_variables_not_values(void **state)
{
    char why[160];
    char long_id[200];
    (void)state;
    memset(long_id, 'A', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    struct fake_env none = {.pairs = {{NULL, NULL}}};
    credentials_env_problem(fake_getenv, &none, why, sizeof(why));
    assert_string_equal(why, "AWS_ACCESS_KEY_ID unset, AWS_SECRET_ACCESS_KEY unset");
    struct fake_env blank = {.pairs = {{"AWS_ACCESS_KEY_ID", "ASIAXAMPLE"}, {"AWS_SECRET_ACCESS_KEY", ""}}};
    credentials_env_problem(fake_getenv, &blank, why, sizeof(why));
    assert_string_equal(why, "AWS_SECRET_ACCESS_KEY empty");
    struct fake_env bad = {.pairs = {{"AWS_ACCESS_KEY_ID", long_id},
                                     {"AWS_SECRET_ACCESS_KEY", "s3cr3t\r\nX: 1"},
                                     {"AWS_SESSION_TOKEN", "s3cr3t TOKEN"}}};
    credentials_env_problem(fake_getenv, &bad, why, sizeof(why));
    assert_string_equal(why, "AWS_ACCESS_KEY_ID too long, AWS_SECRET_ACCESS_KEY holds a blank or control byte, "
                             "AWS_SESSION_TOKEN holds a blank or control byte");
    assert_null(strstr(why, "s3cr3t"));
    assert_null(strstr(why, "AAAA"));
    struct fake_env good = {.pairs = {{"AWS_ACCESS_KEY_ID", "ASIAXAMPLE"}, {"AWS_SECRET_ACCESS_KEY", "wJalr"}}};
    credentials_env_problem(fake_getenv, &good, why, sizeof(why));
    assert_string_equal(why, ""); /* the session token is optional */
    char small[10];
    credentials_env_problem(fake_getenv, &none, small, sizeof(small));
    assert_true(strlen(small) < sizeof(small));
    credentials_env_problem(fake_getenv, &none, small, 0); /* nothing written, no crash */
}

static void test_container_answer_values_are_checked(void **state)
{
    struct aws_credentials c;
    char body[256];
    (void)state;

    snprintf(body, sizeof(body), "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Token\":\"T\"}");
    assert_int_equal(credentials_parse_container(body, strlen(body), &c), 0);
    for (size_t f = 0; f < 3; f++) {
        /* JSON escapes: what arrives decoded holds the control byte */
        static const char *const json_hostile[] = {"\\r\\nX-Injected: 1", "\\n", "\\u0001", "\\u007f",
                                                   "\\t", " x", "\\u2028", "\\u0000x"};
        for (size_t h = 0; h < sizeof(json_hostile) / sizeof(json_hostile[0]); h++) {
            snprintf(body, sizeof(body), "{\"AccessKeyId\":\"A%s\",\"SecretAccessKey\":\"S%s\",\"Token\":\"T%s\"}",
                     f == 0 ? json_hostile[h] : "", f == 1 ? json_hostile[h] : "", f == 2 ? json_hostile[h] : "");
            memset(&c, 0x5a, sizeof(c));
            int r = credentials_parse_container(body, strlen(body), &c);
            /* "\u0000x" is cut at the NUL by the JSON parser: "T" alone is fine */
            if (strcmp(json_hostile[h], "\\u0000x") == 0) {
                assert_int_equal(r, 0);
                continue;
            }
            assert_int_equal(r, -EPROTO);
            assert_true(all_zero(&c));
        }
    }
}

static void test_container_request_is_checked(void **state)
{
    char url[128];
    char auth[128];
    (void)state;

    struct fake_env none = {0};
    assert_int_equal(credentials_container_request(fake_getenv, &none, url, sizeof(url), auth, sizeof(auth)),
                     -ENOENT);
    struct fake_env ok = {.pairs = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9001/creds"},
                                    {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok+/="}}};
    assert_int_equal(credentials_container_request(fake_getenv, &ok, url, sizeof(url), auth, sizeof(auth)), 0);
    assert_string_equal(url, "http://127.0.0.1:9001/creds");
    assert_string_equal(auth, "Authorization: tok+/=");
    struct fake_env no_token = {.pairs = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://h/c"}}};
    assert_int_equal(credentials_container_request(fake_getenv, &no_token, url, sizeof(url), auth, sizeof(auth)),
                     0);
    assert_string_equal(auth, "");

    static const char *const bad_uris[] = {"http://h/c\r\nX: 1", "http://h/c d", "http://h/\x01", "ftp://h/c",
                                           "file:///etc/passwd", "h/c", "http://h/c\x7f"};
    for (size_t i = 0; i < sizeof(bad_uris) / sizeof(bad_uris[0]); i++) {
        struct fake_env env = ok;
        env.pairs[0][1] = bad_uris[i];
        assert_int_equal(credentials_container_request(fake_getenv, &env, url, sizeof(url), auth, sizeof(auth)),
                         -EINVAL);
        assert_string_equal(url, "");
        assert_string_equal(auth, "");
    }
    for (size_t h = 0; h < sizeof(hostile) / sizeof(hostile[0]); h++) {
        char bad[64];
        struct fake_env env = ok;
        snprintf(bad, sizeof(bad), "tok%s", hostile[h]);
        env.pairs[1][1] = bad;
        assert_int_equal(credentials_container_request(fake_getenv, &env, url, sizeof(url), auth, sizeof(auth)),
                         -EINVAL);
        assert_string_equal(auth, "");
    }
    /* too long for the caller's buffers: nothing half-written */
    assert_int_equal(credentials_container_request(fake_getenv, &ok, url, 10, auth, sizeof(auth)), -E2BIG);
    assert_string_equal(url, "");
    assert_int_equal(credentials_container_request(fake_getenv, &ok, url, sizeof(url), auth, 12), -E2BIG);
    assert_string_equal(url, "");
    assert_string_equal(auth, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_values_are_checked),
        cmocka_unit_test(test_env_problem_names_variables_not_values),
        cmocka_unit_test(test_container_answer_values_are_checked),
        cmocka_unit_test(test_container_request_is_checked),
    };
    return cmocka_run_group_tests_name("credentials", tests, NULL, NULL);
}
