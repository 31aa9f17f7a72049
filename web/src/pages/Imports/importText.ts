import { ApiError } from '../../api/client';
import type { Published } from '../../api/types';

/** The import refusals of docs/openapi-import.md in plain words (the server's message says where). */
const IMPORT_ERRORS: Record<string, string> = {
  document_too_large: 'The document is too large (the limit is 4 MiB).',
  invalid_document: 'The document is not a valid OpenAPI 3.0 or 3.1 document.',
  yaml_alias_bomb: 'The YAML repeats anchors and aliases far beyond its own size, so it was refused.',
  swagger_2_not_supported: 'Swagger 2.0 is not supported: convert the document to OpenAPI 3.0 or 3.1 first.',
  unsupported_version: 'This OpenAPI version is not supported: 3.0.x and 3.1.x are.',
  external_ref_not_supported: 'The document refers to another file or a URL ($ref); only references inside the document are read.',
  ref_not_found: 'A reference ($ref) in the document points at nothing.',
  ref_cycle: 'References ($ref) in the document lead back to themselves.',
  ref_too_deep: 'References ($ref) are nested more than 32 deep.',
  ref_expansion_limit: 'The references ($ref) fan out into far too large schemas.',
  too_many_operations: 'The document has more than 1000 operations.',
  duplicate_operation_id: 'Two operations have the same operation id.',
  url_refused: 'That address was refused: only public http(s) addresses (or allow-listed hosts) can be fetched.',
  fetch_failed: 'The document could not be downloaded from that address.',
};

/** The headline of a failed import, in plain words. */
export function importErrorText(code: string): string {
  return IMPORT_ERRORS[code] ?? 'The import was refused.';
}

/** An error of an action, as a sentence with the server's words and code. */
export function actionError(what: string, caught: unknown): Error {
  if (caught instanceof ApiError) {
    if (caught.status === 401) return caught; // the token prompt handles it
    if (caught.code === 'network') return new Error(`${what}: ${caught.message}`);
    return new Error(`${what}: ${caught.message} (${caught.code}).`);
  }
  return new Error(`${what}: ${caught instanceof Error ? caught.message : 'something went wrong'}.`);
}

/** The publish refusals of docs/openapi-import.md in plain words (the server's message names the operation). */
const PUBLISH_ERRORS: Record<string, string> = {
  unknown_agent: 'An enabled operation has no agent, or one the agents config does not have',
  import_not_ready: 'This import is not ready: only a ready import can be published',
  import_not_found: 'This import no longer exists',
};

/** Publishing's error in plain words, with the server's message (it says which operation). */
export function publishError(caught: unknown): Error {
  if (caught instanceof ApiError && Object.hasOwn(PUBLISH_ERRORS, caught.code)) {
    return new Error(
      `Nothing was published; your review is kept. ${PUBLISH_ERRORS[caught.code]}: ${caught.message}.`,
    );
  }
  return actionError('Publishing failed, nothing was published', caught);
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** What a publish did: how many operations went out, and the version of the published set. */
export function publishedText(answer: Published): string {
  return `Published ${plural(answer.operations, 'operation', 'operations')} as the agents' tools (version ${answer.version}).`;
}

export { plural };
