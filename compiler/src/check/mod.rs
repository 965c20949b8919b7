//! Checks over the directive tree. `table` validates every directive against the directive
//! table (name, context, arity, simple value kinds, duplicates); the semantic checks live in
//! `lower`, which sees the typed values.

pub mod table;
