/* Unit tests for xray_header.c and ids.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ids.h"
#include "xray_header.h"
#include "fail_alloc.h"

static int parse(const char *s, struct xray_header *h)
{
    return xray_header_parse(s, strlen(s), h);
}

static void test_full_header(void **state)
{
    struct xray_header h;
    (void)state;
    assert_int_equal(parse("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
                           "Sampled=1;Lineage=a87bd80c:1|68fd508a:5", &h), 0);
    assert_string_equal(h.root, "1-5759e988-bd862e3fe1be46a994272793");
    assert_string_equal(h.parent, "53995c3f42cd8ad8");
    assert_int_equal(h.sampled, XRAY_SAMPLED_YES);
    assert_string_equal(h.lineage, "a87bd80c:1|68fd508a:5");
}

static void test_any_order_case_and_blanks(void **state)
{
    struct xray_header h;
    (void)state;
    assert_int_equal(parse(" sampled=0 ; parent = 2A68D66D2A726DB8;root=1-629d3097-1edcadf06b4c097a50faa7a1;"
                           "Self=1-abc;;junk", &h), 0);
    assert_string_equal(h.root, "1-629d3097-1edcadf06b4c097a50faa7a1");
    assert_string_equal(h.parent, "2A68D66D2A726DB8");
    assert_int_equal(h.sampled, XRAY_SAMPLED_NO);
    assert_string_equal(h.lineage, "");
}

static void test_missing_or_malformed_parts(void **state)
{
    struct xray_header h;
    (void)state;
    /* no Parent, Sampled=? (decision requested) */
    assert_int_equal(parse("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?", &h), 0);
    assert_string_equal(h.parent, "");
    assert_int_equal(h.sampled, XRAY_SAMPLED_UNKNOWN);
    /* malformed Root: treated as absent */
    assert_int_equal(parse("Root=1-5759e98-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", &h), -EINVAL);
    assert_string_equal(h.root, "");
    assert_string_equal(h.parent, "53995c3f42cd8ad8");
    assert_int_equal(parse("Root=2-5759e988-bd862e3fe1be46a994272793", &h), -EINVAL);
    assert_int_equal(parse("Root=1-5759e988-bd862e3fe1be46a99427279z", &h), -EINVAL);
    assert_int_equal(parse("Root=1-5759e988-bd862e3fe1be46a994272793x", &h), -EINVAL);
    /* malformed Parent dropped, Root kept */
    assert_int_equal(parse("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad", &h), 0);
    assert_string_equal(h.parent, "");
    assert_int_equal(parse("", &h), -EINVAL);
    assert_int_equal(xray_header_parse(NULL, 0, &h), -EINVAL);
    /* length is honoured */
    assert_int_equal(xray_header_parse("Root=1-5759e988-bd862e3fe1be46a994272793", 20, &h), -EINVAL);
}

static void test_long_lineage_is_dropped_not_cut(void **state)
{
    struct xray_header h;
    char s[600];
    (void)state;
    strcpy(s, "Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=");
    memset(s + strlen(s), 'a', 300);
    s[49 + 300] = '\0';
    assert_int_equal(parse(s, &h), 0);
    assert_string_equal(h.lineage, "");
}

static void test_ids(void **state)
{
    char trace[XRAY_TRACE_ID_LEN + 1];
    char trace2[XRAY_TRACE_ID_LEN + 1];
    char span[XRAY_SPAN_ID_LEN + 1];
    char span2[XRAY_SPAN_ID_LEN + 1];
    char otel[33];
    (void)state;
    assert_int_equal(ids_new_trace_id(0x5759e988, trace), 0);
    assert_true(xray_trace_id_valid(trace, strlen(trace)));
    assert_memory_equal(trace, "1-5759e988-", 11);
    assert_int_equal(ids_new_trace_id(0x5759e988, trace2), 0);
    assert_string_not_equal(trace, trace2);
    assert_int_equal(ids_new_span_id(span), 0);
    assert_int_equal(ids_new_span_id(span2), 0);
    assert_true(xray_span_id_valid(span, strlen(span)));
    assert_string_not_equal(span, span2);
    /* ids come from a pool refilled in bulk: many in a row, across
     * refills, are all valid and all different */
    {
        static char many[600][XRAY_SPAN_ID_LEN + 1];
        for (int i = 0; i < 600; i++) {
            assert_int_equal(ids_new_span_id(many[i]), 0);
            assert_true(xray_span_id_valid(many[i], strlen(many[i])));
            for (int j = 0; j < i; j++)
                assert_string_not_equal(many[i], many[j]);
        }
    }
    ids_xray_to_otel_trace_id("1-5759e988-bd862e3fe1be46a994272793", otel);
    assert_string_equal(otel, "5759e988bd862e3fe1be46a994272793");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_header),
        cmocka_unit_test(test_any_order_case_and_blanks),
        cmocka_unit_test(test_missing_or_malformed_parts),
        cmocka_unit_test(test_long_lineage_is_dropped_not_cut),
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests_name("xray_header", tests, NULL, NULL);
}
