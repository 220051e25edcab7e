-- The trace context of the span that enqueued a job (W3C `traceparent` and
-- `tracestate`, as a JSON object of header fields), so that its runs, on any
-- server, continue the trace of the request that enqueued it. NULL when the
-- enqueue was not traced (the `opentelemetry` feature off, or no span).
ALTER TABLE {{schema}}.jobs ADD COLUMN trace_context jsonb;
