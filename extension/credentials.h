/*
 * credentials.h - the AWS credentials PutTraceSegments is signed with.
 *
 * Lambda gives the execution role's temporary credentials to extensions as
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, except with
 * SnapStart, where they come from AWS_CONTAINER_CREDENTIALS_FULL_URI with
 * the AWS_CONTAINER_AUTHORIZATION_TOKEN (reference 1.2, trap 14).  Values
 * are secrets: nothing here logs, and callers must not either.
 */
#ifndef LAMBDA_TRACER_CREDENTIALS_H
#define LAMBDA_TRACER_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct aws_credentials {
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[4096];
    int64_t expires_us; /* epoch µs; 0: does not expire (static keys) */
};

/* Whether a credential value is printable ASCII without blanks (what AWS
 * issues).  Values go into header lines: a CR, LF or any other control
 * byte would let the value add header lines.  Pure. */
bool credentials_value_ok(const char *text);

/* From the environment.  0, or -ENOENT when the key id or secret is missing,
 * -EINVAL when a value holds a blank or a control byte (never turned into
 * header lines), -E2BIG when a value does not fit. */
int credentials_from_env(config_getenv_fn getenv_fn, void *ctx, struct aws_credentials *ret)
    __attribute__((warn_unused_result));

/* Why credentials_from_env refused the environment, in words: each of
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN that is
 * unset, empty, holds a blank or control byte, or is too long, e.g.
 * "AWS_ACCESS_KEY_ID unset, AWS_SECRET_ACCESS_KEY empty".  Names only,
 * never a value.  "" when nothing is wrong.  Any thread. */
void credentials_env_problem(config_getenv_fn getenv_fn, void *ctx, char *why, size_t why_size);

/* Parses the container credentials endpoint's answer:
 * {"AccessKeyId","SecretAccessKey","Token","Expiration"}.  0, -EPROTO
 * (not that shape, or a value with a blank or control byte), -E2BIG. */
int credentials_parse_container(const char *body, size_t len, struct aws_credentials *ret)
    __attribute__((warn_unused_result));

/* The container credentials request, from AWS_CONTAINER_CREDENTIALS_FULL_URI
 * and AWS_CONTAINER_AUTHORIZATION_TOKEN: writes the URL into url and
 * "Authorization: <token>" into auth_header ("" without a token).  0;
 * -ENOENT when the URI is unset; -EINVAL when the URI is not http(s)://
 * or either value holds a blank or control byte; -E2BIG when one does not
 * fit.  On error both outputs are "".  Any thread. */
int credentials_container_request(config_getenv_fn getenv_fn, void *ctx, char *url, size_t url_size,
                                  char *auth_header, size_t auth_size) __attribute__((warn_unused_result));

/* Wipes the secrets from memory. */
void credentials_clear(struct aws_credentials *c);

#endif
