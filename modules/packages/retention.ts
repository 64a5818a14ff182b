/**
 * Package retention (`--package-retention-days`, default 7): a package no job refers to
 * any more, and that was neither uploaded nor used for that long, is deleted with its
 * extracted copies. Deployments cannot name packages, so jobs are the only users.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Job } from "../../storage/jobs.ts";
import type { PackageStore, StoredPackage } from "../../storage/packages.ts";
import { type PackageRef, packageUri, parsePackageUri } from "../../storage/package_uri.ts";
import type { Logger } from "../../kit/log.ts";

/** How often unused packages are looked for. */
const SWEEP_INTERVAL_MS = 3_600_000;
/** Jobs read at a time while gathering the packages they name. */
const JOB_PAGE_SIZE = 500;

/**
 * The packages retention deletes: those no job names (`referenced` holds the URIs jobs
 * name) whose last upload or use is more than `retentionDays` before `now`.
 */
export function collectablePackages(
  packages: readonly StoredPackage[],
  referenced: ReadonlySet<string>,
  now: number,
  retentionDays: number,
): PackageRef[] {
  const cutoff = now - retentionDays * 86_400_000;
  return packages
    .filter((p) => !referenced.has(packageUri(p.ref)) && p.lastUsed < cutoff)
    .map((p) => p.ref);
}

/** What a sweep needs of the jobs. */
export interface JobLister {
  list(options: { limit: number; cursor?: string }): Promise<{ jobs: Job[]; cursor?: string }>;
}

/** The package URIs that jobs name as their working_dir: of every job, or those `isWanted` keeps. */
export async function packagesNamedByJobs(
  jobs: JobLister,
  isWanted: (job: Job) => boolean = () => true,
): Promise<Set<string>> {
  const named = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await jobs.list({ limit: JOB_PAGE_SIZE, cursor });
    for (const job of page.jobs) {
      const ref = job.runtime_env.working_dir && parsePackageUri(job.runtime_env.working_dir);
      if (ref && isWanted(job)) named.add(packageUri(ref));
    }
    cursor = page.cursor;
  } while (cursor);
  return named;
}

/** Deletes what `collectablePackages()` lets go; resolves to how many. */
export async function sweepPackages(
  store: PackageStore,
  jobs: JobLister,
  options: { retentionDays: number; now: () => number; logger: Logger },
): Promise<number> {
  // Listed before the jobs are read: a package uploaded for a job submitted meanwhile is
  // either not in this list, or recent.
  const packages = await store.list();
  const referenced = await packagesNamedByJobs(jobs);
  let deleted = 0;
  for (
    const ref of collectablePackages(packages, referenced, options.now(), options.retentionDays)
  ) {
    try {
      await store.delete(ref);
      deleted++;
    } catch (err) {
      options.logger.warn(`retention could not delete package ${packageUri(ref)}:`, err);
    }
  }
  return deleted;
}

/** Sweeps at start and every hour until `signal` aborts. */
export async function keepPackageRetention(
  store: PackageStore,
  jobs: JobLister,
  options: { retentionDays: number; now: () => number; logger: Logger; signal: AbortSignal },
): Promise<void> {
  while (!options.signal.aborted) {
    try {
      const deleted = await sweepPackages(store, jobs, options);
      if (deleted > 0) options.logger.info(`retention deleted ${deleted} unused packages`);
    } catch (err) {
      options.logger.error("package retention failed:", err);
    }
    await delay(SWEEP_INTERVAL_MS, undefined, { signal: options.signal }).catch(() => {});
  }
}
