#!/usr/bin/env node
/*
 * selftest.js - proves the validators can tell good from bad: for each tool,
 * documents that must pass and documents that must fail, all written here
 * by hand (none produced by the C encoders).
 *
 *   node tests/tools/selftest.js      exit 0 when every case behaves
 */
'use strict';

const { validateDocument, validateInputs } = require('./validate_xray');
const { decodeProtobuf, decodeJson } = require('./otlp_decode');

let passed = 0;
let failed = 0;

function check(name, problems, wantValid) {
    const ok = wantValid ? problems.length === 0 : problems.length > 0;
    if (ok) passed++;
    else failed++;
    process.stdout.write(`${ok ? 'ok' : 'not ok'} - ${name}` +
        (ok ? '' : ` (expected ${wantValid ? 'valid' : 'invalid'}: ${problems.join('; ') || 'no problem found'})`) + '\n');
}

const TRACE = '1-5759e988-bd862e3fe1be46a994272793';
const segment = {
    name: 'my-function', id: '53995c3f42cd8ad8', trace_id: TRACE,
    start_time: 1480615200.01, end_time: 1480615201.25, origin: 'AWS::Lambda::Function',
    annotations: { cold_start: true }, metadata: { lambda_tracer: { n: 1 } },
    subsegments: [{ name: 'Invocation', id: '2222222222222222', start_time: 1480615200.02, end_time: 1480615201.2 }],
};
const subsegment = {
    name: 'Overhead', id: '3333333333333333', trace_id: TRACE, parent_id: '53995c3f42cd8ad8',
    type: 'subsegment', start_time: 1480615201.2, end_time: 1480615201.25,
};
const doc = (o, patch) => JSON.stringify(Object.assign({}, o, patch));

/* --- X-Ray ---------------------------------------------------------------- */
check('xray: good segment', validateDocument(doc(segment)), true);
check('xray: good in-progress segment',
    validateDocument(doc(segment, { end_time: undefined, in_progress: true, subsegments: undefined })), true);
check('xray: good independent subsegment', validateDocument(doc(subsegment)), true);
check('xray: bad annotation key (schema)', validateDocument(doc(segment, { annotations: { 'aws:x': 1 } })), false);
check('xray: metadata value outside a namespace (schema)',
    validateDocument(doc(segment, { metadata: { n: 1 } })), false);
check('xray: bad name character (schema)', validateDocument(doc(segment, { name: 'f(1)' })), false);
check('xray: short id (schema)', validateDocument(doc(segment, { id: '53995c3f' })), false);
check('xray: neither end_time nor in_progress (contract)',
    validateDocument(doc(segment, { end_time: undefined })), false);
check('xray: independent subsegment without parent_id (contract)',
    validateDocument(doc(subsegment, { parent_id: undefined })), false);
check('xray: not JSON', validateDocument('{"name":'), false);

const datagram = (header, body) => [{ source: 'dg', content: `${header}\n${body}` }];
const reportProblems = (r) => r.problems.flatMap((p) => p.errors);
check('xray: good daemon datagram',
    reportProblems(validateInputs(datagram('{"format": "json", "version": 1}', doc(segment)), 'datagram')), true);
check('xray: datagram with a wrong header',
    reportProblems(validateInputs(datagram('{"format": "json", "version": 2}', doc(segment)), 'datagram')), false);
const put = (docs) => [{ source: 'put', content: JSON.stringify({ TraceSegmentDocuments: docs }) }];
check('xray: good PutTraceSegments body',
    reportProblems(validateInputs(put([doc(segment), doc(subsegment)]), 'auto')), true);
check('xray: PutTraceSegments element that is an object, not a string',
    reportProblems(validateInputs(put([segment]), 'put')), false);

/* --- OTLP ----------------------------------------------------------------- */
/* The smallest request, bytes written by hand from trace.proto's numbers:
 * one span with trace_id, span_id, name "f", kind SERVER, times 1000/2000 ns,
 * status OK; resource attribute cloud.provider = "aws"; scope "t". */
const str = (s) => [s.length, ...Buffer.from(s)];
const kv = [0x0a, ...str('cloud.provider'), 0x12, 0x05, 0x0a, ...str('aws')];
const resource = [0x0a, kv.length, ...kv];
const scope = [0x0a, 0x03, 0x0a, ...str('t')];
const span = [
    0x0a, 0x10, ...Buffer.from('5759e988bd862e3fe1be46a994272793', 'hex'),
    0x12, 0x08, ...Buffer.from('53995c3f42cd8ad8', 'hex'),
    0x2a, ...str('f'), 0x30, 0x02,
    0x39, 0xe8, 0x03, 0, 0, 0, 0, 0, 0, 0x41, 0xd0, 0x07, 0, 0, 0, 0, 0, 0,
    0x7a, 0x02, 0x18, 0x01,
];
function request(spanBytes) {
    const scopeSpans = [...scope, 0x12, spanBytes.length, ...spanBytes];
    const rs = [0x0a, resource.length, ...resource, 0x12, scopeSpans.length, ...scopeSpans];
    return Buffer.from([0x0a, rs.length, ...rs]);
}
check('otlp: good protobuf request', decodeProtobuf(request(span)).problems, true);
check('otlp: decoded content is right',
    (() => {
        const r = decodeProtobuf(request(span)).request;
        const sp = r.resourceSpans[0].scopeSpans[0].spans[0];
        return sp.traceId === '5759e988bd862e3fe1be46a994272793' && sp.kind === 2 &&
            sp.endTimeUnixNano === '2000' && sp.status.code === 1 ? [] : [JSON.stringify(sp)];
    })(), true);
/* field 17 does not exist in Span: protobufjs would skip it silently */
check('otlp: protobuf with an unknown field number', decodeProtobuf(request([...span, 0x88, 0x01, 0x01])).problems, false);
check('otlp: truncated protobuf', decodeProtobuf(request(span).subarray(0, 40)).problems, false);
check('otlp: protobuf span without a trace id', decodeProtobuf(request(span.slice(18))).problems, false);

const jsonSpan = {
    traceId: '5759e988bd862e3fe1be46a994272793', spanId: '53995c3f42cd8ad8', name: 'f', kind: 2,
    startTimeUnixNano: '1000', endTimeUnixNano: '2000', status: { code: 1 },
    attributes: [{ key: 'n', value: { intValue: '-1' } }, { key: 'd', value: { doubleValue: 'NaN' } }],
};
const jsonRequest = (sp) => JSON.stringify({
    resourceSpans: [{
        resource: { attributes: [{ key: 'cloud.provider', value: { stringValue: 'aws' } }] },
        scopeSpans: [{ scope: { name: 't' }, spans: [sp] }],
    }],
});
check('otlp: good JSON request', decodeJson(jsonRequest(jsonSpan)).problems, true);
{
    const plain = Object.assign({}, jsonSpan);
    delete plain.attributes;
    const fromJson = JSON.stringify(decodeJson(jsonRequest(plain)).request);
    const fromPb = JSON.stringify(decodeProtobuf(request(span)).request);
    check('otlp: JSON and protobuf of the same request read the same',
        fromJson === fromPb ? [] : [`${fromJson} != ${fromPb}`], true);
}
check('otlp: JSON traceId in base64', decodeJson(jsonRequest(Object.assign({}, jsonSpan,
    { traceId: Buffer.from('5759e988bd862e3fe1be46a994272793', 'hex').toString('base64') }))).problems, false);
check('otlp: JSON 64-bit time as a number', decodeJson(jsonRequest(Object.assign({}, jsonSpan,
    { startTimeUnixNano: 1000 }))).problems, false);
check('otlp: JSON enum as a name', decodeJson(jsonRequest(Object.assign({}, jsonSpan,
    { kind: 'SPAN_KIND_SERVER' }))).problems, false);
check('otlp: JSON snake_case key', decodeJson(jsonRequest(Object.assign({}, jsonSpan,
    { parent_span_id: '53995c3f42cd8ad8' }))).problems, false);
check('otlp: JSON span ending before it starts', decodeJson(jsonRequest(Object.assign({}, jsonSpan,
    { endTimeUnixNano: '999' }))).problems, false);

/* --- the schema copies (tests/tools/schemas) ------------------------------ */
{
    const fs = require('fs');
    const path = require('path');
    const { SHARED_DIR, COPY_DIR } = require('./schema_path');
    for (const name of fs.readdirSync(COPY_DIR).filter((n) => n.endsWith('.json')).sort()) {
        const shared = path.join(SHARED_DIR, name);
        if (!fs.existsSync(shared)) {
            process.stdout.write(`# ${name}: no shared reference beside the repository to compare with\n`);
            continue;
        }
        const same = fs.readFileSync(shared).equals(fs.readFileSync(path.join(COPY_DIR, name)));
        check(`schema copy ${name} equals the shared reference`, same ? [] : ['the bytes differ'], true);
    }
}

process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exitCode = failed === 0 ? 0 : 1;
