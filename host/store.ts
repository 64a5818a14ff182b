/**
 * The head's store, by `--store`: the data directory's Deno KV file (`kv`), or a
 * PostgreSQL database that several heads and nodes may share (`postgres://…`). Either way
 * every store and module gets one KvStore; packages live in the data directory with KV,
 * and in PostgreSQL (with a local cache in the data directory) otherwise.
 */
import { join } from "node:path";
import type { KvStore } from "../storage/kv.ts";
import { FilePackageStore, type PackageStore, type TaskRunner } from "../storage/packages.ts";
import type { PostgresStore } from "../storage/postgres/mod.ts";
import type { HeadConfig } from "./config.ts";
import { type DataModes, KV_FILE, openStore } from "./datadir.ts";
import type { Logger } from "../kit/module.ts";

/** The store a head opened. */
export interface HeadStore {
  kv: KvStore;
  packages: PackageStore;
  /** The PostgreSQL store, when `--store` names one. */
  postgres?: PostgresStore;
  /** Closes the store. */
  close(): Promise<void>;
}

/** What `openHeadStore` needs besides the configuration. */
export interface HeadStoreOptions {
  dataDir: string;
  modes: DataModes;
  logger: Logger;
  /** Where packages are extracted: the head's worker pool. */
  runner: TaskRunner;
}

/**
 * Opens the store `config.store` names. Throws an error whose message names the store
 * and why it cannot be used, in one line (StoreRefusedError for PostgreSQL).
 */
export async function openHeadStore(
  config: HeadConfig,
  options: HeadStoreOptions,
): Promise<HeadStore> {
  const { dataDir, modes, logger, runner } = options;
  const packageOptions = {
    fileMode: modes.file,
    limits: { maxBytes: config.maxPackageExtractBytes, maxRatio: config.maxPackageRatio },
    runner, // packages inflate off the event loop
  };
  const packagesDir = join(dataDir, "packages");
  if (config.store === "kv") {
    const kv = await openStore(join(dataDir, KV_FILE), {
      fileMode: modes.file,
      recover: config.recover,
      logger,
    });
    return {
      kv,
      packages: new FilePackageStore(packagesDir, packageOptions),
      close: () => Promise.resolve(kv.close()),
    };
  }
  // Loaded only here: a head on Deno KV never needs the PostgreSQL driver.
  const { openPostgresStore } = await import("../storage/postgres/mod.ts");
  const postgres = await openPostgresStore(config.store, {
    password: config.storePassword,
    token: config.token,
    packages: { dir: packagesDir, ...packageOptions },
    onAvailability: (available, reason) => {
      if (available) logger.info(`the store ${postgres.name} answers again`);
      else {
        logger.warn(
          `the store ${postgres.name} is unavailable (${reason}): calls that need it answer ` +
            "503 and the head's own writes are retried until it is back",
        );
      }
    },
  });
  return {
    kv: postgres.kv,
    packages: postgres.packages,
    postgres,
    close: () => postgres.close(),
  };
}
