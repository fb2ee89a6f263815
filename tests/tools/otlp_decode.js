#!/usr/bin/env node
/*
 * otlp_decode.js - an independent reader for OTLP trace export bodies
 * (ExportTraceServiceRequest), built on protobufjs and the
 * opentelemetry-proto files in tests/tools/proto/.
 *
 *   node tests/tools/otlp_decode.js [--json-input] [--quiet] [FILE|-]
 *
 * Default input: binary protobuf (application/x-protobuf).  --json-input:
 * an OTLP/JSON body (application/json), checked strictly against the OTLP
 * JSON rules (lowerCamelCase keys known to the proto, trace/span ids as hex
 * of the right length, 64-bit integers as decimal strings, enums as
 * integers), then run through protobufjs (encode, decode).
 *
 * Either way the request is printed on stdout in one canonical OTLP/JSON
 * form (fields in field-number order, defaults left out, ids as lower-case
 * hex, 64-bit integers as strings), so a protobuf body and a JSON body
 * that mean the same thing print the same text.  The message is also
 * linted: non-empty ids of the right size, names, kinds, end >= start,
 * unique attribute keys, and for protobuf input no unknown or
 * non-canonically encoded fields (re-encoding must give the same size).
 *
 * Exit status: 0 valid, 1 invalid (problems on stderr), 2 usage or I/O.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const protobuf = require('protobufjs');

const PROTO_DIR = path.join(__dirname, 'proto');
const REQUEST = 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest';
/* OTLP/JSON: these bytes fields are hex strings, not base64. */
const HEX_FIELDS = { traceId: 16, spanId: 8, parentSpanId: 8 };
const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT32_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);

let root = null;

function requestType() {
    if (!root) {
        root = new protobuf.Root();
        root.resolvePath = (origin, target) => path.join(PROTO_DIR, target);
        root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
        root.resolveAll();
    }
    return root.lookupType(REQUEST);
}

function sortedFields(type) {
    return type.fieldsArray.slice().sort((a, b) => a.id - b.id);
}

function isDefault(field, v) {
    if (v === undefined || v === null) return true;
    if (field.resolvedType instanceof protobuf.Type) return false;
    if (protobuf.util.Long && protobuf.util.Long.isLong(v)) return v.isZero();
    if (v instanceof Uint8Array) return v.length === 0;
    return v === 0 || v === '' || v === false;
}

function scalarToJson(field, v) {
    if (field.type === 'bytes') {
        const buf = Buffer.from(v);
        return field.name in HEX_FIELDS ? buf.toString('hex') : buf.toString('base64');
    }
    if (LONG_TYPES.has(field.type)) {
        /* protobufjs gives a Long (signedness from the field type), or a
         * number when the long package is missing */
        return String(v);
    }
    if (field.type === 'double' || field.type === 'float') {
        if (Number.isNaN(v)) return 'NaN';
        if (v === Infinity) return 'Infinity';
        if (v === -Infinity) return '-Infinity';
    }
    return v; /* string, bool, 32-bit ints, enums (numbers), finite doubles */
}

/* A decoded protobufjs message as canonical OTLP/JSON. */
function toCanonical(type, msg) {
    const out = {};
    for (const field of sortedFields(type)) {
        const own = Object.prototype.hasOwnProperty.call(msg, field.name);
        const v = msg[field.name];
        const conv = (x) => (field.resolvedType instanceof protobuf.Type ? toCanonical(field.resolvedType, x)
            : scalarToJson(field, x));
        if (field.repeated) {
            if (Array.isArray(v) && v.length > 0) out[field.name] = v.map(conv);
        } else if (field.partOf) {
            /* a oneof member is present even with its type's default value */
            if (own && msg[field.partOf.name] === field.name) out[field.name] = conv(v);
        } else if (own && !isDefault(field, v)) {
            out[field.name] = conv(v);
        }
    }
    return out;
}

/*
 * Strict OTLP/JSON check of `value` as message `type`; returns the value as
 * a protobufjs fromObject() input (bytes as Buffers, longs as strings).
 */
function fromOtlpJson(type, value, where, problems) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        problems.push(`${where}: must be an object`);
        return {};
    }
    const out = {};
    const oneofSeen = {};
    for (const key of Object.keys(value)) {
        const field = type.fields[key];
        const at = `${where}.${key}`;
        if (!field) {
            problems.push(`${at}: not a field of ${type.name} (OTLP/JSON keys are lowerCamelCase)`);
            continue;
        }
        if (field.partOf) {
            if (oneofSeen[field.partOf.name]) problems.push(`${at}: second member of oneof ${field.partOf.name}`);
            oneofSeen[field.partOf.name] = true;
        }
        const one = (v, w) => fieldFromJson(field, v, w, problems);
        if (field.repeated) {
            if (!Array.isArray(value[key])) problems.push(`${at}: must be an array`);
            else out[key] = value[key].map((v, i) => one(v, `${at}[${i}]`));
        } else {
            out[key] = one(value[key], at);
        }
    }
    return out;
}

function fieldFromJson(field, v, at, problems) {
    if (field.resolvedType instanceof protobuf.Type) return fromOtlpJson(field.resolvedType, v, at, problems);
    if (field.resolvedType instanceof protobuf.Enum) {
        /* OTLP/JSON: enums are integers only. */
        if (!Number.isInteger(v)) problems.push(`${at}: enum must be an integer, got ${JSON.stringify(v)}`);
        return v;
    }
    if (field.type === 'bytes') {
        if (typeof v !== 'string') {
            problems.push(`${at}: bytes must be a string`);
            return Buffer.alloc(0);
        }
        if (field.name in HEX_FIELDS) {
            const want = HEX_FIELDS[field.name] * 2;
            if (!/^[0-9a-fA-F]*$/.test(v) || (v.length !== want && v.length !== 0))
                problems.push(`${at}: must be ${want} hex digits (OTLP/JSON ids are hex, not base64)`);
            return Buffer.from(v, 'hex');
        }
        return Buffer.from(v, 'base64');
    }
    if (LONG_TYPES.has(field.type)) {
        /* 64-bit integers are decimal strings in OTLP/JSON (numbers are
         * accepted by receivers, but we emit strings). */
        if (typeof v !== 'string' || !/^-?[0-9]+$/.test(v))
            problems.push(`${at}: 64-bit integer must be a decimal string, got ${JSON.stringify(v)}`);
        return String(v);
    }
    if (INT32_TYPES.has(field.type)) {
        if (!Number.isInteger(v)) problems.push(`${at}: must be an integer`);
        return v;
    }
    if (field.type === 'double' || field.type === 'float') {
        if (v === 'NaN') return NaN;
        if (v === 'Infinity') return Infinity;
        if (v === '-Infinity') return -Infinity;
        if (typeof v !== 'number') problems.push(`${at}: must be a number`);
        return v;
    }
    if (field.type === 'bool') {
        if (typeof v !== 'boolean') problems.push(`${at}: must be true or false`);
        return v;
    }
    if (field.type === 'string') {
        if (typeof v !== 'string') problems.push(`${at}: must be a string`);
        return v;
    }
    problems.push(`${at}: unhandled type ${field.type}`);
    return v;
}

/* Lint of the canonical request: what a trace backend needs. */
function lint(req, problems) {
    const hexOk = (s, n) => typeof s === 'string' && s.length === 2 * n && !/^0+$/.test(s);
    (req.resourceSpans || []).forEach((rs, i) => {
        const keysUnique = (attrs, where) => {
            const seen = new Set();
            (attrs || []).forEach((kv) => {
                if (!kv.key) problems.push(`${where}: attribute with an empty key`);
                if (seen.has(kv.key)) problems.push(`${where}: attribute ${kv.key} repeated`);
                seen.add(kv.key);
                if (!kv.value || Object.keys(kv.value).length !== 1)
                    problems.push(`${where}: attribute ${kv.key} has no value`);
            });
        };
        keysUnique(rs.resource && rs.resource.attributes, `resourceSpans[${i}].resource`);
        (rs.scopeSpans || []).forEach((ss, j) => {
            (ss.spans || []).forEach((sp, k) => {
                const w = `resourceSpans[${i}].scopeSpans[${j}].spans[${k}]`;
                if (!hexOk(sp.traceId, 16)) problems.push(`${w}: traceId must be 16 non-zero bytes`);
                if (!hexOk(sp.spanId, 8)) problems.push(`${w}: spanId must be 8 non-zero bytes`);
                if (sp.parentSpanId !== undefined && !hexOk(sp.parentSpanId, 8))
                    problems.push(`${w}: parentSpanId must be 8 non-zero bytes or absent`);
                if (!sp.name) problems.push(`${w}: empty name`);
                if (!(sp.kind >= 1 && sp.kind <= 5)) problems.push(`${w}: kind ${sp.kind} is not 1..5`);
                if (sp.startTimeUnixNano === undefined || sp.endTimeUnixNano === undefined)
                    problems.push(`${w}: start and end times are required`);
                else if (BigInt(sp.endTimeUnixNano) < BigInt(sp.startTimeUnixNano))
                    problems.push(`${w}: ends before it starts`);
                if (sp.status && !(sp.status.code === undefined || [1, 2].includes(sp.status.code)))
                    problems.push(`${w}: status code ${sp.status.code}`);
                keysUnique(sp.attributes, w);
                (sp.events || []).forEach((ev, e) => {
                    if (ev.timeUnixNano === undefined) problems.push(`${w}.events[${e}]: no time`);
                    if (!ev.name) problems.push(`${w}.events[${e}]: no name`);
                    keysUnique(ev.attributes, `${w}.events[${e}]`);
                });
            });
        });
    });
}

/* Decodes a protobuf body.  Returns {request, problems}. */
function decodeProtobuf(bytes) {
    const type = requestType();
    const problems = [];
    let msg;
    try {
        msg = type.decode(bytes);
    } catch (e) {
        return { request: null, problems: [`protobuf decode failed: ${e.message}`] };
    }
    /* protobufjs skips unknown fields silently; a re-encoding of another
     * size means fields it did not know, or non-canonical encoding. */
    const again = type.encode(msg).finish();
    if (again.length !== bytes.length)
        problems.push(`re-encoded size ${again.length} differs from input size ${bytes.length} ` +
            '(unknown field numbers, defaults written, invalid UTF-8 or non-canonical varints)');
    const request = toCanonical(type, msg);
    lint(request, problems);
    return { request, problems };
}

/* Checks and decodes an OTLP/JSON body.  Returns {request, problems}. */
function decodeJson(text) {
    const type = requestType();
    let parsed;
    try {
        parsed = JSON.parse(text);
    } catch (e) {
        return { request: null, problems: [`not JSON: ${e.message}`] };
    }
    const problems = [];
    const obj = fromOtlpJson(type, parsed, 'request', problems);
    const msg = type.fromObject(obj);
    const err = type.verify(msg);
    if (err) problems.push(`protobufjs: ${err}`);
    const request = toCanonical(type, type.decode(type.encode(msg).finish()));
    lint(request, problems);
    return { request, problems };
}

function main(argv) {
    let jsonInput = false;
    let quiet = false;
    const files = [];
    for (const a of argv) {
        if (a === '--json-input') jsonInput = true;
        else if (a === '--quiet') quiet = true;
        else if (a === '-h' || a === '--help') {
            process.stdout.write('usage: otlp_decode.js [--json-input] [--quiet] [FILE|-]\n');
            return 0;
        } else files.push(a);
    }
    if (files.length > 1) {
        process.stderr.write('otlp_decode: one input at a time\n');
        return 2;
    }
    let data;
    try {
        const f = files.length ? files[0] : '-';
        data = fs.readFileSync(f === '-' ? 0 : f);
    } catch (e) {
        process.stderr.write(`otlp_decode: ${e.message}\n`);
        return 2;
    }
    const { request, problems } = jsonInput ? decodeJson(data.toString('utf8')) : decodeProtobuf(data);
    for (const p of problems) process.stderr.write(`otlp_decode: ${p}\n`);
    if (request && !quiet) process.stdout.write(JSON.stringify(request) + '\n');
    return problems.length === 0 ? 0 : 1;
}

module.exports = { decodeProtobuf, decodeJson };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
