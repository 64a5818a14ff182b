import assert from "node:assert/strict";
import { z } from "zod";
import {
  ConflictError,
  InsufficientStorageError,
  StoreUnavailableError,
} from "../storage/errors.ts";
import { UnavailableError, ValidationError } from "./errors.ts";
import { errorAnswer, parseListInput } from "./http.ts";

Deno.test("parseListInput() parses each comma-separated item, and names a bad one", () => {
  const Color = z.enum(["RED", "GREEN"]);
  assert.equal(parseListInput(Color, undefined, "color"), undefined);
  assert.deepEqual(parseListInput(Color, "RED, GREEN", "color"), ["RED", "GREEN"]);
  assert.throws(
    () => parseListInput(Color, "RED,BLUE", "color"),
    (err: Error) =>
      err instanceof ValidationError && err.message.startsWith("Invalid request: color:"),
  );
});

Deno.test("errorAnswer() says what went wrong, but a bug's message stays on the head", () => {
  assert.deepEqual(errorAnswer(new ConflictError("taken")), { status: 409, message: "taken" });
  assert.deepEqual(errorAnswer(new UnavailableError("too many tails")), {
    status: 503,
    message: "too many tails",
  });
  assert.deepEqual(errorAnswer(new StoreUnavailableError("The store postgres://x is away")), {
    status: 503,
    message: "The store postgres://x is away",
  });
  assert.deepEqual(errorAnswer(new InsufficientStorageError("disk full")), {
    status: 507,
    message: "disk full",
  });
  assert.deepEqual(errorAnswer(new TypeError("secret detail")), {
    status: 500,
    message: "Internal server error",
  });
});
