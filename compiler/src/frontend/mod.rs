//! JSON and YAML front ends (same directive tree as the NGINX-style parser), the JSON Schema, and converters back to every format.
