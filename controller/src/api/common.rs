use schemars::{Schema, SchemaGenerator, json_schema};

/// A Go-style duration restricted to whole units, e.g. `30m`, `4h`, `1h30m`, `7d`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(s|m|h|d))+$";

/// A non-negative USD amount with at most two decimals, as a string (money is never a float).
pub const MONEY_PATTERN: &str = r"^[0-9]{1,9}(\.[0-9]{1,2})?$";

/// Conditions are a list keyed by `type`, so server-side apply merges them per condition
/// instead of replacing the whole list (two field managers can own different conditions).
pub fn conditions_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "properties": {
                "lastTransitionTime": { "type": "string", "format": "date-time" },
                "message": { "type": "string", "maxLength": 32768 },
                "observedGeneration": { "type": "integer", "format": "int64", "minimum": 0 },
                "reason": { "type": "string", "maxLength": 1024 },
                "status": { "type": "string", "enum": ["True", "False", "Unknown"] },
                "type": { "type": "string", "maxLength": 316 }
            }
        }
    })
}
