// Audit: the record's schema version and the query's limits. The shapes are in schemas/audit.ts.

/** Written into every audit record; bumped when the record's shape changes incompatibly. */
export const AUDIT_RECORD_SCHEMA_VERSION = 1;

export const AUDIT_QUERY_MAX_LIMIT = 1000;
export const AUDIT_QUERY_DEFAULT_LIMIT = 100;
