/** The caller matrix of the RLS tests (rls.functions, rls.private): who calls, and what a call must give. */

export type Role = 'anon' | 'member of A' | 'member of B' | 'no membership' | 'super admin' | 'service_role';
export const ROLES: Role[] = ['anon', 'member of A', 'member of B', 'no membership', 'super admin', 'service_role'];
/** ok: the call succeeds and did what it says; otherwise the SQLSTATE it must fail with. */
export type Expect = 'ok' | '42501' | 'QJ002' | 'QJ003' | 'QJ010';
export const OK = 'ok';
export const DENY = '42501';
