/**
 * Correlation ids. The trace id ties a browser request to the job it enqueued and to the worker's logs
 * (it is stored on the job as trace_id); the request id is the caller's own id for one HTTP request.
 * Both come from headers the caller controls, so they are validated: short and a safe charset, never
 * reflected into logs or headers otherwise (header/log injection), and never over the 128-character
 * column limit (which would turn an enqueue into a 400).
 */

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
// W3C traceparent: version-traceid-parentid-flags; an all-zero trace id is invalid per the spec.
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** x-trace-id if valid, else the trace id of a valid traceparent, else a fresh 32-hex id. */
export function traceIdFrom(headers: Headers): string {
  const given = headers.get('x-trace-id')?.trim();
  if (given && SAFE_ID.test(given)) return given;
  const tp = headers.get('traceparent')?.trim().toLowerCase();
  const m = tp ? TRACEPARENT.exec(tp) : null;
  if (m && !/^0+$/.test(m[1])) return m[1];
  return crypto.randomUUID().replaceAll('-', '');
}

/** x-request-id if valid, else null (the job's request_id stays empty rather than invented). */
export function requestIdFrom(headers: Headers): string | null {
  const given = headers.get('x-request-id')?.trim();
  return given && SAFE_ID.test(given) ? given : null;
}
