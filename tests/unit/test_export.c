/* Unit tests for export.c's pure parts: the PutTraceSegments answer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "export.h"
#include "fail_alloc.h"
#include "xray_encode.h"

static const char *const doc_texts[] = {
    "{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"6226467e3f845502\"}",
    "{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"53995c3f42cd8ad8\"}",
    "{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"0000000000000001\"}",
};

static size_t docs_init(struct xray_doc *docs)
{
    for (size_t i = 0; i < 3; i++)
        docs[i] = (struct xray_doc){doc_texts[i], strlen(doc_texts[i])};
    return 3;
}

static size_t parse(const char *body, const struct xray_doc *docs, size_t n, bool *refused)
{
    return export_xray_unprocessed(body, strlen(body), docs, n, refused);
}

static void test_unprocessed_names_documents_by_id(void **state)
{
    struct xray_doc docs[3];
    bool refused[3];
    size_t n = docs_init(docs);
    (void)state;
    /* The reference's example answer, plus an id we never sent. */
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":[{\"Id\":\"6226467e3f845502\",\"ErrorCode\":"
                           "\"InvalidTraceId\",\"Message\":\"Invalid segment.\"},{\"Id\":\"ffffffffffffffff\"}]}",
                           docs, n, refused),
                     2);
    assert_true(refused[0]);
    assert_false(refused[1]);
    assert_false(refused[2]);
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":[]}", docs, n, refused), 0);
    assert_false(refused[0]);
    assert_int_equal(parse("not json", docs, n, refused), 0);
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":[{\"Id\":\"\"},{\"Id\":7},{}]}", docs, n, refused), 3);
    assert_false(refused[0] || refused[1] || refused[2]);
    assert_int_equal(export_xray_unprocessed(NULL, 0, docs, n, refused), 0);
}

/* A document listed many times is refused once: the retry array holds one
 * entry per document sent.  Listing one id 60 times over 50 documents
 * overflowed it before. */
static void test_unprocessed_duplicates_refuse_each_document_once(void **state)
{
    struct xray_doc docs[XRAY_PUT_MAX_DOCS];
    bool refused[XRAY_PUT_MAX_DOCS];
    char body[4096] = "{\"UnprocessedTraceSegments\":[";
    size_t count = 0;
    (void)state;
    for (size_t i = 0; i < XRAY_PUT_MAX_DOCS; i++)
        docs[i] = (struct xray_doc){doc_texts[i % 2], strlen(doc_texts[i % 2])};
    for (int i = 0; i < 60; i++)
        snprintf(body + strlen(body), sizeof(body) - strlen(body), "%s{\"Id\":\"6226467e3f845502\"}",
                 i ? "," : "");
    snprintf(body + strlen(body), sizeof(body) - strlen(body), "]}");
    assert_int_equal(parse(body, docs, XRAY_PUT_MAX_DOCS, refused), 60);
    for (size_t i = 0; i < XRAY_PUT_MAX_DOCS; i++) {
        assert_int_equal(refused[i], i % 2 == 0); /* every document with that id, once */
        count += refused[i];
    }
    assert_int_equal(count, XRAY_PUT_MAX_DOCS / 2);
}

static void test_unprocessed_out_of_memory(void **state)
{
    struct xray_doc docs[3];
    bool refused[3];
    size_t n = docs_init(docs);
    const char *body = "{\"UnprocessedTraceSegments\":[{\"Id\":\"53995c3f42cd8ad8\"}]}";
    (void)state;
    fail_alloc_hook_cjson();
    for (unsigned long k = 1;; k++) {
        fail_alloc_reset();
        fail_alloc_fail_at(k);
        size_t listed = parse(body, docs, n, refused);
        assert_int_equal(fail_alloc_live(), 0);
        if (listed == 1) {
            assert_true(refused[1]);
            break;
        }
        assert_int_equal(listed, 0); /* unparsable for want of memory: nothing refused */
        assert_false(refused[0] || refused[1] || refused[2]);
        assert_true(k < 100);
    }
    fail_alloc_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unprocessed_names_documents_by_id),
        cmocka_unit_test(test_unprocessed_duplicates_refuse_each_document_once),
        cmocka_unit_test(test_unprocessed_out_of_memory),
    };
    return cmocka_run_group_tests_name("export", tests, NULL, NULL);
}
