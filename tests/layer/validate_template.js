#!/usr/bin/env node
/*
 * validate_template.js - checks an AWS SAM template (YAML, CloudFormation
 * short tags allowed) against AWS's SAM JSON schema with ajv, plus what the
 * schema cannot see: every Ref / Fn::GetAtt / Fn::Sub name and every
 * Condition used must be defined.
 *
 *   node tests/layer/validate_template.js [--json] TEMPLATE
 *   node tests/layer/validate_template.js [--report] TEMPLATE...
 *
 * --json prints the template as JSON (short tags in their long form) on
 * success; --report prints {file: {code, problems}} for every file.  Exit
 * 0 when all are valid, 1 when one is not (one problem per line on stderr,
 * prefixed with its file), 2 on usage, I/O or YAML errors.  The schema is found at $SAM_SCHEMA, else
 * at shared/reference/schemas/sam.schema.json beside the repository, else in
 * tests/tools/schemas.  The
 * npm packages come from tests/tools (npm ci --prefix tests/tools).
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const toolsRequire = createRequire(path.resolve(__dirname, '..', 'tools', 'package.json'));
const Ajv = toolsRequire('ajv-draft-04');
const yaml = toolsRequire('js-yaml');

const schemas = require('../tools/schema_path');

const SCHEMA_NAME = 'sam.schema.json';

function findSchema() {
    return schemas.findSchema(SCHEMA_NAME, 'SAM_SCHEMA');
}

/*
 * CloudFormation's short tags, turned into the long JSON form CloudFormation
 * itself uses ("!Sub x" is {"Fn::Sub": "x"}).  Each may tag a scalar, a
 * sequence or a mapping; which forms make sense is for the schema and the
 * reference check to judge, not the loader.
 */
const FUNCTIONS = ['Base64', 'Cidr', 'FindInMap', 'GetAtt', 'GetAZs', 'ImportValue', 'Join',
    'Select', 'Split', 'Sub', 'Transform', 'And', 'Equals', 'If', 'Not', 'Or', 'ToJsonString',
    'Length'];

function longName(short) {
    if (short === 'Ref' || short === 'Condition') return short;
    return 'Fn::' + short;
}

function cloudFormationTags() {
    const tags = [];
    for (const short of FUNCTIONS.concat(['Ref', 'Condition'])) {
        const key = longName(short);
        const wrap = (value) => ({ [key]: value });
        tags.push(yaml.defineScalarTag('!' + short, {
            resolve: (source) => wrap(short === 'GetAtt' ? source.split(/\.(.*)/s).slice(0, 2) : source),
            identify: () => false,
        }));
        tags.push(yaml.defineSequenceTag('!' + short, {
            create: () => [],
            addItem: (carrier, item) => { carrier.push(item); },
            finalize: wrap,
            identify: () => false,
        }));
        tags.push(yaml.defineMappingTag('!' + short, {
            create: () => ({}),
            addPair: (carrier, k, v) => {
                if (typeof k !== 'string') return 'mapping keys must be strings';
                carrier[k] = v;
                return '';
            },
            has: (carrier, k) => Object.prototype.hasOwnProperty.call(carrier, k),
            keys: (result) => Object.keys(result[key]),
            get: (result, k) => result[key][k],
            finalize: wrap,
            identify: () => false,
        }));
    }
    return yaml.CORE_SCHEMA.withTags(tags);
}

const PSEUDO_PARAMETERS = new Set(['AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue',
    'AWS::Partition', 'AWS::Region', 'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix']);

/* Names used by Ref, Fn::GetAtt, Fn::Sub and Condition that nothing defines. */
function undefinedNames(tpl) {
    const problems = [];
    const resources = new Set(Object.keys(tpl.Resources || {}));
    const parameters = new Set(Object.keys(tpl.Parameters || {}));
    const conditions = new Set(Object.keys(tpl.Conditions || {}));
    const known = (name) => resources.has(name) || parameters.has(name) || PSEUDO_PARAMETERS.has(name);

    function walk(node, where, inConditions) {
        if (Array.isArray(node)) {
            node.forEach((item, i) => walk(item, where + '/' + i, inConditions));
            return;
        }
        if (node === null || typeof node !== 'object') return;
        for (const [k, v] of Object.entries(node)) {
            const at = where + '/' + k;
            if (k === 'Ref' && typeof v === 'string' && !known(v)) {
                problems.push(at + ': Ref to undefined name "' + v + '"');
            } else if (k === 'Fn::GetAtt') {
                const target = Array.isArray(v) ? v[0] : undefined;
                if (typeof target !== 'string' || !resources.has(target))
                    problems.push(at + ': Fn::GetAtt of undefined resource ' + JSON.stringify(target));
            } else if (k === 'Fn::Sub') {
                const text = Array.isArray(v) ? v[0] : v;
                const vars = Array.isArray(v) && v[1] && typeof v[1] === 'object' ? v[1] : {};
                if (typeof text === 'string') {
                    for (const m of text.matchAll(/\$\{([^!}][^}]*)\}/g)) {
                        const name = m[1].split('.')[0];
                        if (!known(name) && !(name in vars))
                            problems.push(at + ': Fn::Sub names undefined "' + m[1] + '"');
                    }
                }
            } else if (k === 'Condition' && typeof v === 'string' && (inConditions || where.split('/').length === 3)) {
                if (!conditions.has(v)) problems.push(at + ': undefined condition "' + v + '"');
            } else if (k === 'Fn::If' && Array.isArray(v) && typeof v[0] === 'string' && !conditions.has(v[0])) {
                problems.push(at + ': Fn::If on undefined condition "' + v[0] + '"');
            }
            walk(v, at, inConditions);
        }
    }
    for (const section of ['Conditions', 'Resources', 'Outputs']) {
        if (tpl[section]) walk(tpl[section], '/' + section, section === 'Conditions');
    }
    return problems;
}

/* Checks one template: {code, problems, template}. */
function check(file, validate) {
    let tpl;
    try {
        tpl = yaml.load(fs.readFileSync(file, 'utf8'), { schema: cloudFormationTags(), filename: file });
    } catch (e) {
        return { code: 2, problems: [e.message] };
    }
    if (tpl === null || typeof tpl !== 'object' || Array.isArray(tpl))
        return { code: 1, problems: ['not a mapping'] };
    const problems = [];
    if (!validate(tpl)) {
        for (const err of validate.errors) {
            problems.push((err.instancePath || '/') + ': ' + err.message +
                (err.params && err.params.additionalProperty ? ' (' + err.params.additionalProperty + ')' : ''));
        }
    }
    problems.push(...undefinedNames(tpl));
    return { code: problems.length ? 1 : 0, problems, template: tpl };
}

function main(argv) {
    const args = argv.slice(2);
    const json = args.includes('--json');
    const report = args.includes('--report');
    const files = args.filter((a) => a !== '--json' && a !== '--report');
    if (files.length === 0 || (json && files.length !== 1)) {
        process.stderr.write('usage: validate_template.js [--json] TEMPLATE | [--report] TEMPLATE...\n');
        return 2;
    }
    /* The SAM schema carries documentation keywords of its own
     * (markdownDescription, __samPassThrough): not strict.  Compiled once
     * for every file (it is 750 KB). */
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(JSON.parse(fs.readFileSync(findSchema(), 'utf8')));
    let code = 0;
    const results = {};
    for (const file of files) {
        const r = check(file, validate);
        for (const p of r.problems) process.stderr.write(file + ' ' + p + '\n');
        code = Math.max(code, r.code);
        results[file] = { code: r.code, problems: r.problems };
        if (json && r.code === 0) process.stdout.write(JSON.stringify(r.template, null, 2) + '\n');
    }
    if (report) process.stdout.write(JSON.stringify(results) + '\n');
    return code;
}

process.exitCode = main(process.argv);
