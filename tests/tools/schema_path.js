'use strict';
/*
 * schema_path.js - where the validators find a reference schema: $ENV_VAR
 * when set, else the shared reference beside the repository
 * (../shared/reference/schemas), else the copy in tests/tools/schemas (see
 * its README).
 */
const fs = require('fs');
const path = require('path');

const REPO = path.resolve(__dirname, '..', '..');
const SHARED_DIR = path.resolve(REPO, '..', 'shared', 'reference', 'schemas');
const COPY_DIR = path.resolve(__dirname, 'schemas');

function findSchema(name, envVar) {
    const candidates = [
        envVar ? process.env[envVar] : undefined,
        path.join(SHARED_DIR, name),
        path.join(COPY_DIR, name),
    ].filter(Boolean);
    for (const c of candidates) {
        if (fs.existsSync(c)) return c;
    }
    throw new Error(`schema ${name} not found (tried ${candidates.join(', ')})` +
                    (envVar ? `; set ${envVar}` : ''));
}

module.exports = { findSchema, SHARED_DIR, COPY_DIR };
