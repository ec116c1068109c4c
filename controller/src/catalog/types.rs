//! Terraform type constraints (`string`, `list(number)`, `object({ a = optional(bool, true) })`,
//! …) parsed from `variables.tf`, and the check of a JSON input value against them.

use std::collections::BTreeMap;
use std::fmt;

use hcl::expr::{Expression, ObjectKey};
use serde_json::Value;

/// A Terraform type constraint.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeConstraint {
    /// `any`: Terraform infers the type; every value is accepted.
    Any,
    /// `string`.
    String,
    /// `number`.
    Number,
    /// `bool`.
    Bool,
    /// `list(T)`.
    List(Box<TypeConstraint>),
    /// `set(T)`.
    Set(Box<TypeConstraint>),
    /// `map(T)`.
    Map(Box<TypeConstraint>),
    /// `object({ name = T, other = optional(T, default) })`.
    Object(BTreeMap<String, ObjectAttribute>),
    /// `tuple([T1, T2])`.
    Tuple(Vec<TypeConstraint>),
}

/// One attribute of an object type constraint.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectAttribute {
    /// The attribute's type.
    pub constraint: TypeConstraint,
    /// Declared with `optional(...)`: it may be omitted.
    pub optional: bool,
}

/// Why an expression is not a type constraint Terraform would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TypeSyntaxError(String);

impl TypeConstraint {
    /// Reads a type constraint from the expression of a variable's `type` attribute.
    pub fn from_expression(expr: &Expression) -> Result<Self, TypeSyntaxError> {
        match expr {
            Expression::Variable(var) => match var.as_str() {
                "any" => Ok(Self::Any),
                "string" => Ok(Self::String),
                "number" => Ok(Self::Number),
                "bool" => Ok(Self::Bool),
                other => Err(TypeSyntaxError(format!(
                    "unknown primitive type `{other}` (expected string, number, bool or any)"
                ))),
            },
            Expression::FuncCall(call) => {
                let name = call.name.name.as_str();
                let single_arg = || match call.args.as_slice() {
                    [arg] => Ok(arg),
                    _ => Err(TypeSyntaxError(format!(
                        "`{name}(...)` takes exactly one argument"
                    ))),
                };
                match name {
                    "list" => Ok(Self::List(Box::new(Self::from_expression(single_arg()?)?))),
                    "set" => Ok(Self::Set(Box::new(Self::from_expression(single_arg()?)?))),
                    "map" => Ok(Self::Map(Box::new(Self::from_expression(single_arg()?)?))),
                    "tuple" => match single_arg()? {
                        Expression::Array(items) => items
                            .iter()
                            .map(Self::from_expression)
                            .collect::<Result<_, _>>()
                            .map(Self::Tuple),
                        _ => Err(TypeSyntaxError("`tuple(...)` takes a list of types".into())),
                    },
                    "object" => match single_arg()? {
                        Expression::Object(attrs) => {
                            let mut out = BTreeMap::new();
                            for (key, value) in attrs {
                                out.insert(
                                    object_key_name(key)?,
                                    ObjectAttribute::from_expression(value)?,
                                );
                            }
                            Ok(Self::Object(out))
                        }
                        _ => Err(TypeSyntaxError(
                            "`object(...)` takes an object of attribute types".into(),
                        )),
                    },
                    "optional" => Err(TypeSyntaxError(
                        "`optional(...)` is only allowed on object attributes".into(),
                    )),
                    other => Err(TypeSyntaxError(format!(
                        "unknown type constructor `{other}`"
                    ))),
                }
            }
            Expression::Parenthesis(inner) => Self::from_expression(inner),
            other => Err(TypeSyntaxError(format!(
                "`{other}` is not a type constraint"
            ))),
        }
    }

    /// Checks `value` against this constraint the way Terraform converts module inputs, and
    /// returns every mismatch with the path inside the value where it was found (`""` for
    /// the value itself, `.a[2]` below it).
    pub fn check(&self, value: &Value) -> Vec<TypeMismatch> {
        let mut problems = Vec::new();
        self.check_at(value, String::new(), &mut problems);
        problems
    }

    fn check_at(&self, value: &Value, path: String, problems: &mut Vec<TypeMismatch>) {
        let mismatch = |problems: &mut Vec<TypeMismatch>, expected: String| {
            problems.push(TypeMismatch {
                path: path.clone(),
                expected,
                given: describe(value),
            });
        };
        // Terraform accepts null for any type; whether null is allowed for the variable
        // as a whole is its `nullable` setting, checked by the caller.
        if value.is_null() {
            return;
        }
        match self {
            Self::Any => {}
            // Terraform converts numbers and bools to strings.
            Self::String => {
                if !(value.is_string() || value.is_number() || value.is_boolean()) {
                    mismatch(problems, self.to_string());
                }
            }
            Self::Number => {
                let ok = value.is_number()
                    || value
                        .as_str()
                        .is_some_and(|s| s.trim().parse::<f64>().is_ok_and(f64::is_finite));
                if !ok {
                    mismatch(problems, self.to_string());
                }
            }
            Self::Bool => {
                if !(value.is_boolean() || matches!(value.as_str(), Some("true" | "false"))) {
                    mismatch(problems, self.to_string());
                }
            }
            Self::List(element) | Self::Set(element) => match value.as_array() {
                Some(items) => {
                    for (index, item) in items.iter().enumerate() {
                        element.check_at(item, format!("{path}[{index}]"), problems);
                    }
                }
                None => mismatch(problems, self.to_string()),
            },
            Self::Tuple(elements) => match value.as_array() {
                Some(items) if items.len() == elements.len() => {
                    for (index, (item, element)) in items.iter().zip(elements).enumerate() {
                        element.check_at(item, format!("{path}[{index}]"), problems);
                    }
                }
                _ => mismatch(problems, self.to_string()),
            },
            Self::Map(element) => match value.as_object() {
                Some(entries) => {
                    for (key, item) in entries {
                        element.check_at(item, format!("{path}[{key:?}]"), problems);
                    }
                }
                None => mismatch(problems, self.to_string()),
            },
            Self::Object(attributes) => match value.as_object() {
                Some(entries) => {
                    for (name, attribute) in attributes {
                        match entries.get(name) {
                            Some(item) => attribute.constraint.check_at(
                                item,
                                format!("{path}.{name}"),
                                problems,
                            ),
                            None if attribute.optional => {}
                            None => problems.push(TypeMismatch {
                                path: format!("{path}.{name}"),
                                expected: format!(
                                    "required attribute of type {}",
                                    attribute.constraint
                                ),
                                given: "nothing".into(),
                            }),
                        }
                    }
                    // Terraform silently drops attributes the type does not declare; a
                    // dropped attribute is almost always a typo, so it is an error here.
                    for name in entries
                        .keys()
                        .filter(|name| !attributes.contains_key(*name))
                    {
                        let allowed: Vec<&str> = attributes.keys().map(String::as_str).collect();
                        problems.push(TypeMismatch {
                            path: format!("{path}.{name}"),
                            expected: format!("one of the attributes {}", allowed.join(", ")),
                            given: format!("unknown attribute `{name}`"),
                        });
                    }
                }
                None => mismatch(problems, self.to_string()),
            },
        }
    }
}

impl ObjectAttribute {
    fn from_expression(expr: &Expression) -> Result<Self, TypeSyntaxError> {
        if let Expression::FuncCall(call) = expr
            && call.name.name.as_str() == "optional"
        {
            return match call.args.as_slice() {
                [ty] | [ty, _] => Ok(Self {
                    constraint: TypeConstraint::from_expression(ty)?,
                    optional: true,
                }),
                _ => Err(TypeSyntaxError(
                    "`optional(...)` takes a type and an optional default".into(),
                )),
            };
        }
        Ok(Self {
            constraint: TypeConstraint::from_expression(expr)?,
            optional: false,
        })
    }
}

fn object_key_name(key: &ObjectKey) -> Result<String, TypeSyntaxError> {
    match key {
        ObjectKey::Identifier(ident) => Ok(ident.to_string()),
        ObjectKey::Expression(Expression::String(name)) => Ok(name.clone()),
        ObjectKey::Expression(Expression::Variable(var)) => Ok(var.to_string()),
        other => Err(TypeSyntaxError(format!(
            "object attribute name `{other:?}` is not a literal"
        ))),
    }
}

/// A value that does not fit a type constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeMismatch {
    /// Where inside the input the mismatch is (`""` for the input itself).
    pub path: String,
    /// What Terraform expects there.
    pub expected: String,
    /// What was given.
    pub given: String,
}

fn describe(value: &Value) -> String {
    const MAX: usize = 60;
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    };
    let mut shown = value.to_string();
    if shown.chars().count() > MAX {
        shown = shown.chars().take(MAX).collect::<String>() + "…";
    }
    format!("{kind} {shown}")
}

impl fmt::Display for TypeConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::String => f.write_str("string"),
            Self::Number => f.write_str("number"),
            Self::Bool => f.write_str("bool"),
            Self::List(t) => write!(f, "list({t})"),
            Self::Set(t) => write!(f, "set({t})"),
            Self::Map(t) => write!(f, "map({t})"),
            Self::Tuple(ts) => {
                let parts: Vec<String> = ts.iter().map(ToString::to_string).collect();
                write!(f, "tuple([{}])", parts.join(", "))
            }
            Self::Object(attrs) => {
                let parts: Vec<String> = attrs
                    .iter()
                    .map(|(name, attr)| {
                        if attr.optional {
                            format!("{name} = optional({})", attr.constraint)
                        } else {
                            format!("{name} = {}", attr.constraint)
                        }
                    })
                    .collect();
                write!(f, "object({{ {} }})", parts.join(", "))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(src: &str) -> TypeConstraint {
        let body = hcl::parse(&format!("t = {src}\n")).unwrap();
        let attr = body.attributes().next().unwrap();
        TypeConstraint::from_expression(attr.expr()).unwrap()
    }

    #[test]
    fn parses_nested_constraints_and_prints_them_back() {
        for src in [
            "string",
            "list(number)",
            "map(list(bool))",
            "set(string)",
            "tuple([string, number])",
            "object({ enabled = optional(bool), size = string })",
            "any",
        ] {
            assert_eq!(parse(src).to_string(), src);
        }
        assert_eq!(
            parse("object({ a = optional(number, 5) })").to_string(),
            "object({ a = optional(number) })"
        );
    }

    #[test]
    fn rejects_what_terraform_rejects() {
        let body = hcl::parse(
            "a = strin\nb = list(string, number)\nc = optional(string)\nd = \"string\"\n",
        )
        .unwrap();
        for attr in body.attributes() {
            assert!(
                TypeConstraint::from_expression(attr.expr()).is_err(),
                "{} accepted",
                attr.key()
            );
        }
    }

    #[test]
    fn primitives_convert_like_terraform() {
        assert!(parse("string").check(&json!(5)).is_empty());
        assert!(parse("string").check(&json!(true)).is_empty());
        assert!(parse("number").check(&json!("5.5")).is_empty());
        assert!(parse("bool").check(&json!("true")).is_empty());
        assert_eq!(parse("number").check(&json!("five"))[0].expected, "number");
        assert_eq!(parse("bool").check(&json!(1))[0].given, "number 1");
        assert_eq!(
            parse("string").check(&json!(["a"]))[0].given,
            "list [\"a\"]"
        );
    }

    #[test]
    fn reports_the_path_of_nested_mismatches() {
        let t =
            parse("object({ size = string, ports = list(number), extra = optional(map(bool)) })");
        let problems = t.check(&json!({"size": "m", "ports": [80, "x"], "extra": {"a": 3}}));
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec![".extra[\"a\"]", ".ports[1]"]);
    }

    #[test]
    fn missing_and_unknown_object_attributes_are_errors() {
        let t = parse("object({ size = string, enabled = optional(bool) })");
        let problems = t.check(&json!({"sise": "m"}));
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].path, ".size");
        assert_eq!(problems[0].given, "nothing");
        assert_eq!(problems[1].given, "unknown attribute `sise`");
    }

    #[test]
    fn tuple_length_must_match() {
        let t = parse("tuple([string, number])");
        assert!(t.check(&json!(["a", 1])).is_empty());
        assert_eq!(t.check(&json!(["a"])).len(), 1);
    }
}
