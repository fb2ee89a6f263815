/*
 * cost.c - see cost.h.
 */
#include "cost.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

enum cost_arch cost_arch_built(void)
{
#if defined(__aarch64__)
    return COST_ARCH_ARM64;
#else
    return COST_ARCH_X86_64;
#endif
}

const char *cost_arch_name(enum cost_arch arch)
{
    return arch == COST_ARCH_ARM64 ? "arm64" : "x86_64";
}

void cost_price_default(enum cost_arch arch, struct cost_price *ret)
{
    ret->gb_s_usd = arch == COST_ARCH_ARM64 ? COST_ARM64_GB_S_USD : COST_X86_64_GB_S_USD;
    ret->request_usd = COST_REQUEST_USD;
}

int cost_parse_price(const char *text, double *ret_usd)
{
    char *end = NULL;
    double v;

    if (text == NULL || text[0] == '\0')
        return -EINVAL;
    /* strtod also takes "inf", "nan", hex and leading blanks: only digits,
     * one point and an exponent are a price. */
    for (const char *c = text; *c != '\0'; c++) {
        if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' || *c == '-' ||
              *c == '+'))
            return -EINVAL;
    }
    if (!(text[0] >= '0' && text[0] <= '9') && text[0] != '.')
        return -EINVAL;
    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v < 0 || v >= 1)
        return -EINVAL;
    *ret_usd = v;
    return 0;
}

double cost_gb_s(int64_t billed_ms, int64_t memory_mb)
{
    if (billed_ms <= 0 || memory_mb <= 0)
        return 0;
    return (double)billed_ms / 1000.0 * ((double)memory_mb / 1024.0);
}

double cost_duration_usd(const struct cost_price *price, int64_t billed_ms, int64_t memory_mb)
{
    return price->gb_s_usd * cost_gb_s(billed_ms, memory_mb);
}

/* ms rounded up, as Lambda bills (1 ms granularity); absent -> 0. */
static int64_t ceil_ms(double ms)
{
    if (!(ms > 0) || !isfinite(ms))
        return 0;
    if (ms > 9e15)
        return INT64_MAX / 2;
    return (int64_t)ceil(ms);
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

bool cost_split_report(const struct cost_price *price, const struct cost_input *in,
                       struct cost_split *ret)
{
    struct cost_split s = {0};

    if (in->billed_ms < 0 || in->memory_mb <= 0)
        return false;
    s.billed_ms = in->billed_ms;
    if (in->init_duration_ms > 0 && in->duration_ms >= 0)
        s.init_billed_ms =
            clamp(in->billed_ms - ceil_ms(in->duration_ms), 0, ceil_ms(in->init_duration_ms));
    s.invoke_billed_ms = s.billed_ms - s.init_billed_ms;
    s.after_billed_ms = clamp(ceil_ms(in->after_response_ms), 0, s.invoke_billed_ms);
    s.own_billed_ms = clamp(ceil_ms(in->own_after_response_ms), 0, s.after_billed_ms);
    s.gb_s = cost_gb_s(s.billed_ms, in->memory_mb);
    s.usd = cost_duration_usd(price, s.billed_ms, in->memory_mb) + price->request_usd;
    s.init_usd = cost_duration_usd(price, s.init_billed_ms, in->memory_mb);
    s.invoke_usd = cost_duration_usd(price, s.invoke_billed_ms, in->memory_mb) + price->request_usd;
    s.after_usd = cost_duration_usd(price, s.after_billed_ms, in->memory_mb);
    s.own_usd = cost_duration_usd(price, s.own_billed_ms, in->memory_mb);
    *ret = s;
    return true;
}
