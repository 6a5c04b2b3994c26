/**
 * One transient-error list (issue 15): the edge functions answer 503 + Retry-After for exactly the
 * database errors the worker repeats a call for (supabase/functions/_supaqueue/errors.ts), so a client
 * and a worker never disagree on whether the database was merely unavailable.
 */
import { expect, test } from 'vitest';
import { CONNECTION_ERROR_CODES, RETRYABLE_PG_CODES } from '../supabase/functions/_supaqueue/errors.ts';
import { toApiError } from '../supabase/functions/_supaqueue/http.ts';
import { isTransientDbError } from '../worker/errors.ts';

/** A server error as postgres.js raises it. */
const serverError = (code: string) => Object.assign(new Error('server'), { name: 'PostgresError', severity: 'ERROR', code });
/** A client-side (driver or socket) error. */
const clientError = (code: string) => Object.assign(new Error('client'), { code });

const TRANSIENT_SQLSTATES = [...RETRYABLE_PG_CODES, '08P01', '57P04', '53200', '53100', '57014'];
const PERMANENT_SQLSTATES = ['QJ001', '23505', '42501', '22P02', '42883', 'P0001'];

test.each(TRANSIENT_SQLSTATES)('SQLSTATE %s: the worker retries and the API answers 503', (code) => {
  expect(isTransientDbError(serverError(code))).toBe(true);
  expect(toApiError(serverError(code))).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
});

test.each([...CONNECTION_ERROR_CODES])('driver/socket code %s: the worker retries and the API answers 503', (code) => {
  expect(isTransientDbError(clientError(code))).toBe(true);
  expect(toApiError(clientError(code))).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
});

test.each(PERMANENT_SQLSTATES)('SQLSTATE %s: not transient for either', (code) => {
  expect(isTransientDbError(serverError(code))).toBe(false);
  expect(toApiError(serverError(code))?.code).not.toBe('UNAVAILABLE');
});
