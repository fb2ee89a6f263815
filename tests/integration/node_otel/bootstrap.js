// A Node.js function with its own OpenTelemetry SDK, as a user would write it, plus a minimal
// Runtime API (2018-06-01) loop so it runs under the emulator.  The SDK reads the trace header
// with the X-Ray propagator (Lambda-Runtime-Trace-Id, as _X_AMZN_TRACE_ID) and exports OTLP
// protobuf to OTEL_EXPORTER_OTLP_ENDPOINT, the same sink the extension sends to.
'use strict';
const path = require('path');
const http = require('http');
const TOOLS = path.join(__dirname, '..', '..', 'tools', 'node_modules');
const req = (m) => require(path.join(TOOLS, m));
const api = req('@opentelemetry/api');
const { BasicTracerProvider, SimpleSpanProcessor } = req('@opentelemetry/sdk-trace-base');
const { AWSXRayPropagator } = req('@opentelemetry/propagator-aws-xray');
const { OTLPTraceExporter } = req('@opentelemetry/exporter-trace-otlp-proto');
const { resourceFromAttributes } = req('@opentelemetry/resources');

const exporter = new OTLPTraceExporter({ url: process.env.OTEL_EXPORTER_OTLP_ENDPOINT + '/v1/traces' });
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME || 'node-fn' }),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer('node-fn');
const propagator = new AWSXRayPropagator();
const BASE = '/2018-06-01/runtime';
const [host, port] = (process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001').split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, p, body) {
  return new Promise((resolve, reject) => {
    const r = http.request({ host, port, method, path: p, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    r.on('error', reject);
    if (body) r.write(body);
    r.end();
  });
}

async function handler(traceHeader) {
  const carrier = { 'x-amzn-trace-id': traceHeader };
  const ctx = propagator.extract(api.ROOT_CONTEXT, carrier, api.defaultTextMapGetter);
  const outer = tracer.startSpan('handler', { kind: api.SpanKind.INTERNAL }, ctx);
  const inner = tracer.startSpan('db.query', {}, api.trace.setSpan(ctx, outer));
  inner.end();
  outer.end();
  await provider.forceFlush();
  return { ok: true };
}

(async () => {
  for (;;) {
    const next = await call('GET', BASE + '/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    const header = next.headers['lambda-runtime-trace-id'] || '';
    let out;
    try {
      out = await handler(header);
    } catch (e) {
      out = { error: String(e) };
    }
    await call('POST', `${BASE}/invocation/${id}/response`, JSON.stringify(out));
  }
})().catch((e) => {
  process.stderr.write(`bootstrap: ${e}\n`);
  process.exit(1);
});
