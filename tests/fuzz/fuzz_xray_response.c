/*
 * fuzz_xray_response.c - a PutTraceSegments answer on arbitrary bytes: which
 * of the documents just sent X-Ray lists in UnprocessedTraceSegments.
 *
 * The documents are the shape the encoder writes ({"id":"<16 hex>",...}),
 * XRAY_PUT_MAX_DOCS of them, some ids repeated.  Whatever the answer says,
 * no more documents are refused than were sent, each refused one is named
 * by an Id of the answer, and no more are refused than entries listed.  A
 * violation aborts.  (A duplicated Id once overflowed the retry array.)
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "xray_encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* ids 0000000000000000 .. 0000000000000031 (hex of i), written as the
 * encoder writes them; documents 40.. repeat the first ids. */
static char texts[XRAY_PUT_MAX_DOCS][96];
static struct xray_doc docs[XRAY_PUT_MAX_DOCS];

static void make_docs(void)
{
    for (size_t i = 0; i < XRAY_PUT_MAX_DOCS; i++) {
        size_t id = i < 40 ? i : i - 40;
        int n = snprintf(texts[i], sizeof(texts[i]),
                         "{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"%016zx\"}", id);
        docs[i].data = texts[i];
        docs[i].len = (size_t)n;
    }
}

/* Is some UnprocessedTraceSegments[].Id of the answer the id of doc? */
static bool named(const cJSON *list, const struct xray_doc *doc)
{
    const cJSON *entry;

    cJSON_ArrayForEach(entry, list)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "Id"));
        char needle[48];
        int n;

        if (id == NULL)
            continue;
        n = snprintf(needle, sizeof(needle), "\"id\":\"%s\"", id);
        if (n > 0 && (size_t)n < sizeof(needle) && memmem(doc->data, doc->len, needle, (size_t)n))
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool refused[XRAY_PUT_MAX_DOCS];
    size_t listed, n_refused = 0;
    cJSON *root;
    const cJSON *list;

    if (docs[0].data == NULL)
        make_docs();
    /* The number of documents sent varies with the input's length. */
    size_t n = 1 + size % XRAY_PUT_MAX_DOCS;
    listed = export_xray_unprocessed((const char *)data, size, docs, n, refused);

    root = cJSON_ParseWithLengthOpts((const char *)data, size, NULL, false);
    list = cJSON_GetObjectItemCaseSensitive(root, "UnprocessedTraceSegments");
    for (size_t i = 0; i < n; i++) {
        if (!refused[i])
            continue;
        n_refused++;
        check(named(list, &docs[i]));
    }
    /* The count covers the documents sent and refused, nothing else:
     * never more than were sent or than the answer listed. */
    check(listed == n_refused);
    check(n_refused <= n && n_refused <= (size_t)cJSON_GetArraySize(list));
    cJSON_Delete(root);
    return 0;
}
