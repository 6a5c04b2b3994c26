/**
 * Typed helpers for the jobs API and live job status, over the supabase-js client your frontend
 * already has (see api.ts for the requests, watch.ts for Realtime with its polling fallback):
 *
 *   const { data: job, error } = await enqueueJob(supabase, { type: 'email.send', payload: { to } });
 *   const watch = watchJob(supabase, job.id, (state) => render(state));   // later: await watch.stop()
 */
export * from './types.ts';
export { cancelJob, enqueueJob, getJob, getLimits, listJobs, retryJob } from './api.ts';
export { jobTopic, tenantJobsTopic, waitForJob, watchJob, watchJobs } from './watch.ts';
