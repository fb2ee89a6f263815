#!/usr/bin/env node
/*
 * validate_xray.js - checks X-Ray segment documents against AWS's official
 * JSON schema (xray-segmentdocument-schema-v1.0.0, draft-04) with ajv, plus
 * the rules the documentation states and the schema does not encode.
 *
 *   node tests/tools/validate_xray.js [--format=auto|lines|datagram|put] [--json] [FILE...]
 *
 * FILE '-' or none: standard input.  Formats (auto picks per input):
 *   lines     one document per non-empty line (JSON lines)
 *   datagram  a daemon UDP datagram: header line, '\n', one document
 *   put       a PutTraceSegments body: {"TraceSegmentDocuments": ["<doc>", ...]}
 * Segments are validated against the schema root; independent subsegments
 * ("type": "subsegment") against #/definitions/subsegment.
 *
 * Prints one line per problem ("SOURCE#N: message"), or with --json one
 * report object; exits 0 when every document is valid, 1 when any is not,
 * 2 on usage or I/O errors.  The schema is found at $XRAY_SCHEMA, else at
 * shared/reference/schemas/ beside the repository, else in tests/tools/schemas.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const Ajv = require('ajv-draft-04');

const schemas = require('./schema_path');

const SCHEMA_NAME = 'xray-segmentdocument-schema-v1.0.0.json';
/* Segment document size limit: "64 KB (not adjustable)" (X-Ray quotas). */
const DOC_MAX_BYTES = 64 * 1024;
const HEX16 = /^[0-9a-fA-F]{16}$/;
const TRACE_ID = /^1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}$/;

function findSchema() {
    return schemas.findSchema(SCHEMA_NAME, 'XRAY_SCHEMA');
}

let validators = null;

function getValidators() {
    if (validators) return validators;
    const schema = JSON.parse(fs.readFileSync(findSchema(), 'utf8'));
    /* strict: false because the official schema mixes keywords ajv's strict
     * mode frowns upon (maxLength next to a multi-type, "version" at the
     * root); the schema itself is not ours to fix. */
    const ajv = new Ajv({ allErrors: true, strict: false });
    ajv.addSchema(schema, 'xray');
    validators = {
        segment: ajv.getSchema('xray'),
        subsegment: ajv.getSchema('xray#/definitions/subsegment'),
    };
    if (!validators.segment || !validators.subsegment) throw new Error('schema did not compile');
    return validators;
}

/*
 * Rules from the X-Ray documentation (reference 4.2) that the schema leaves
 * out: end_time or in_progress (exactly one), ids of 16 hex digits, what an
 * independent subsegment must carry, unique ids, the size limit.
 */
function contractErrors(doc, text) {
    const errors = [];
    const seen = new Set();
    const bytes = Buffer.byteLength(text, 'utf8');

    if (bytes > DOC_MAX_BYTES) errors.push(`document is ${bytes} bytes, over the ${DOC_MAX_BYTES}-byte limit`);

    function timing(node, where) {
        const hasEnd = Object.prototype.hasOwnProperty.call(node, 'end_time');
        const inProgress = node.in_progress === true;
        if (hasEnd === inProgress) errors.push(`${where}: needs exactly one of end_time and "in_progress": true`);
        if (hasEnd && typeof node.start_time === 'number' && typeof node.end_time === 'number' &&
            node.end_time < node.start_time) errors.push(`${where}: end_time before start_time`);
    }
    function ids(node, where) {
        if (typeof node.id !== 'string' || !HEX16.test(node.id)) errors.push(`${where}: id must be 16 hex digits`);
        else if (seen.has(node.id.toLowerCase())) errors.push(`${where}: id ${node.id} used twice`);
        else seen.add(node.id.toLowerCase());
        if (node.parent_id !== undefined && (typeof node.parent_id !== 'string' || !HEX16.test(node.parent_id)))
            errors.push(`${where}: parent_id must be 16 hex digits`);
    }
    function walk(node, where) {
        if (node === null || typeof node !== 'object' || Array.isArray(node)) return;
        ids(node, where);
        timing(node, where);
        if (Array.isArray(node.subsegments)) {
            node.subsegments.forEach((s, i) => {
                if (s && typeof s === 'object' && s.type !== undefined)
                    errors.push(`${where}.subsegments[${i}]: "type" belongs on independent subsegments only`);
                walk(s, `${where}.subsegments[${i}]`);
            });
        }
    }

    if (doc.type === 'subsegment') {
        if (typeof doc.trace_id !== 'string' || !TRACE_ID.test(doc.trace_id))
            errors.push('independent subsegment: trace_id must be 1-<8 hex>-<24 hex>');
        if (doc.parent_id === undefined) errors.push('independent subsegment: parent_id is required');
    } else if (doc.type !== undefined) {
        errors.push(`unknown document type ${JSON.stringify(doc.type)}`);
    } else if (typeof doc.trace_id === 'string' && !TRACE_ID.test(doc.trace_id)) {
        errors.push('trace_id must be 1-<8 hex>-<24 hex>');
    }
    walk(doc, doc.type === 'subsegment' ? 'subsegment' : 'segment');
    return errors;
}

/* Validates one document given as text.  Returns a list of messages. */
function validateDocument(text) {
    let doc;
    try {
        doc = JSON.parse(text);
    } catch (e) {
        return [`not JSON: ${e.message}`];
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return ['a document must be a JSON object'];
    const v = getValidators();
    const which = doc.type === 'subsegment' ? v.subsegment : v.segment;
    const errors = [];
    if (!which(doc)) {
        for (const e of which.errors) {
            /* The name pattern is 5,000 characters long: name the rule instead. */
            const msg = e.keyword === 'pattern' ? `must match the pattern at ${e.schemaPath}` : e.message;
            errors.push(`schema: ${e.instancePath || '/'} ${msg}`);
        }
    }
    return errors.concat(contractErrors(doc, text));
}

/* Splits an input into [label, documentText | {error}] entries. */
function documentsOf(content, format, source) {
    const out = [];
    if (format === 'auto') {
        const nl = content.indexOf('\n');
        const first = nl >= 0 ? content.slice(0, nl) : content;
        let head = null;
        try { head = JSON.parse(first); } catch (e) { /* not a header */ }
        if (head && typeof head === 'object' && 'format' in head && 'version' in head) format = 'datagram';
        else {
            let whole = null;
            try { whole = JSON.parse(content); } catch (e) { /* lines */ }
            format = whole && typeof whole === 'object' && 'TraceSegmentDocuments' in whole ? 'put' : 'lines';
        }
    }
    if (format === 'lines') {
        content.split('\n').forEach((line, i) => {
            if (line.trim() !== '') out.push([`${source}:${i + 1}`, line]);
        });
    } else if (format === 'datagram') {
        const nl = content.indexOf('\n');
        if (nl < 0) return [[source, { error: 'datagram without a newline after the header' }]];
        let head;
        try { head = JSON.parse(content.slice(0, nl)); } catch (e) {
            return [[source, { error: `datagram header is not JSON: ${e.message}` }]];
        }
        /* The daemon accepts format "json" (any case) and version 1. */
        if (typeof head.format !== 'string' || head.format.toLowerCase() !== 'json' || head.version !== 1)
            return [[source, { error: `datagram header ${JSON.stringify(head)} is not {"format":"json","version":1}` }]];
        out.push([`${source}(datagram)`, content.slice(nl + 1)]);
    } else if (format === 'put') {
        let body;
        try { body = JSON.parse(content); } catch (e) {
            return [[source, { error: `PutTraceSegments body is not JSON: ${e.message}` }]];
        }
        const docs = body && body.TraceSegmentDocuments;
        if (!Array.isArray(docs) || docs.length === 0)
            return [[source, { error: 'TraceSegmentDocuments must be a non-empty array' }]];
        docs.forEach((d, i) => {
            if (typeof d !== 'string') out.push([`${source}[${i}]`, { error: 'each element must be a string containing a document' }]);
            else out.push([`${source}[${i}]`, d]);
        });
    } else {
        throw new Error(`unknown format ${format}`);
    }
    return out;
}

/* Validates inputs ([{source, content}]); returns a report. */
function validateInputs(inputs, format) {
    const report = { documents: 0, invalid: 0, problems: [] };
    for (const { source, content } of inputs) {
        for (const [label, doc] of documentsOf(content, format, source)) {
            report.documents++;
            const errors = typeof doc === 'string' ? validateDocument(doc) : [doc.error];
            if (errors.length > 0) {
                report.invalid++;
                report.problems.push({ document: label, errors });
            }
        }
    }
    return report;
}

function main(argv) {
    let format = 'auto';
    let json = false;
    const files = [];
    for (const a of argv) {
        if (a.startsWith('--format=')) format = a.slice(9);
        else if (a === '--json') json = true;
        else if (a === '-h' || a === '--help') {
            process.stdout.write('usage: validate_xray.js [--format=auto|lines|datagram|put] [--json] [FILE...]\n');
            return 0;
        } else files.push(a);
    }
    if (!['auto', 'lines', 'datagram', 'put'].includes(format)) {
        process.stderr.write(`validate_xray: unknown format ${format}\n`);
        return 2;
    }
    let inputs;
    let report;
    try {
        inputs = (files.length ? files : ['-']).map((f) => ({
            source: f === '-' ? '<stdin>' : f,
            content: fs.readFileSync(f === '-' ? 0 : f, 'utf8'),
        }));
        report = validateInputs(inputs, format);
    } catch (e) {
        process.stderr.write(`validate_xray: ${e.message}\n`);
        return 2;
    }
    if (json) {
        process.stdout.write(JSON.stringify(report) + '\n');
    } else {
        for (const p of report.problems) {
            for (const e of p.errors) process.stdout.write(`${p.document}: ${e}\n`);
        }
        process.stdout.write(`validate_xray: ${report.documents} documents, ${report.invalid} invalid\n`);
    }
    if (report.documents === 0) {
        process.stderr.write('validate_xray: no documents found\n');
        return 1;
    }
    return report.invalid === 0 ? 0 : 1;
}

module.exports = { validateDocument, validateInputs };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
