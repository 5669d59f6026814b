//! A workflow's run parameters (`params:` at the top level): their types, defaults and whether
//! they are required, and checking the parameters of a run against them (at trigger time, by
//! the API and by `bulkhead run --param`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The type of a run parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// Text (the default).
    #[default]
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
}

impl ParamType {
    /// Its name in the workflow file.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
        }
    }

    /// Whether `v` is a value of this type.
    pub fn admits(self, v: &Value) -> bool {
        match self {
            ParamType::String => v.is_string(),
            ParamType::Integer => v.is_i64() || v.is_u64(),
            ParamType::Number => v.is_number(),
            ParamType::Boolean => v.is_boolean(),
        }
    }

    /// `text` (from a command line or a form) read as a value of this type.
    pub fn from_text(self, text: &str) -> Result<Value, String> {
        let bad = || format!("`{text}` is not {}", self.article());
        match self {
            ParamType::String => Ok(Value::String(text.to_string())),
            ParamType::Integer => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| bad()),
            ParamType::Number => {
                let n: f64 = text.trim().parse().map_err(|_| bad())?;
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or_else(bad)
            }
            ParamType::Boolean => match text.trim() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(bad()),
            },
        }
    }

    fn article(self) -> &'static str {
        match self {
            ParamType::String => "a string",
            ParamType::Integer => "an integer",
            ParamType::Number => "a number",
            ParamType::Boolean => "a boolean (true or false)",
        }
    }
}

/// One entry of `params:` as written.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    /// `string` (default), `integer`, `number` or `boolean`.
    #[serde(rename = "type", default)]
    pub kind: ParamType,
    /// The value when a run does not give one (of the parameter's type).
    pub default: Option<Value>,
    /// What it means, shown in the UI's trigger form and in errors.
    pub description: Option<String>,
    /// Every run must give it (then it has no `default`).
    #[serde(default)]
    pub required: bool,
    /// The only values allowed, if set (each of the parameter's type).
    #[serde(rename = "enum")]
    #[schemars(length(min = 1))]
    pub allowed: Option<Vec<Value>>,
}

/// A validated run parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// Its default, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// What it means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Every run must give it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// The only values allowed, if set.
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Value>>,
}

/// The declared parameters of a workflow, by name, in the order written.
pub type Params = IndexMap<String, ParamSpec>;

/// Checks one `params:` entry; the problems are `(field, message, hint)`.
pub(super) fn check(
    name: &str,
    raw: &RawParam,
) -> Result<ParamSpec, Vec<(String, String, String)>> {
    let mut problems = Vec::new();
    let field = |key: &str| format!("params.{name}.{key}");
    if !super::validate::valid_id(name) {
        problems.push((
            format!("params.{name}"),
            format!("`{name}` is not a valid parameter name"),
            "use letters, digits, `_`, `-` and `.`".to_string(),
        ));
    }
    if let Some(d) = &raw.default {
        if !raw.kind.admits(d) {
            problems.push((
                field("default"),
                format!("`{d}` is not {}", raw.kind.article()),
                format!("give a default of type `{}`", raw.kind.as_str()),
            ));
        }
        if raw.required {
            problems.push((
                field("required"),
                "a required parameter cannot have a default".to_string(),
                "remove `default`, or `required: true`".to_string(),
            ));
        }
    }
    if let Some(allowed) = &raw.allowed {
        if allowed.is_empty() {
            problems.push((
                field("enum"),
                "lists no value".to_string(),
                "list the allowed values, or remove `enum`".to_string(),
            ));
        }
        for v in allowed.iter().filter(|v| !raw.kind.admits(v)) {
            problems.push((
                field("enum"),
                format!("`{v}` is not {}", raw.kind.article()),
                format!(
                    "every value of `enum` must be of type `{}`",
                    raw.kind.as_str()
                ),
            ));
        }
        if let Some(d) = &raw.default {
            if raw.kind.admits(d) && !allowed.contains(d) {
                problems.push((
                    field("default"),
                    format!("`{d}` is not one of `enum`"),
                    "make the default one of the allowed values".to_string(),
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ParamSpec {
        kind: raw.kind,
        default: raw.default.clone(),
        description: raw.description.clone(),
        required: raw.required,
        allowed: raw.allowed.clone(),
    })
}

/// A run parameter given as text (`--param KEY=VALUE`), or as a JSON value (the API).
#[derive(Debug, Clone)]
pub enum Given {
    /// Text, read by the declared type (a string parameter takes it as it is).
    Text(String),
    /// A JSON value, which must be of the declared type.
    Json(Value),
}

/// The parameters of a run of a workflow declaring `specs`, from those `given`: each checked
/// against its type and `enum`, the defaults filled in, and every required one present. A
/// workflow declaring none takes any parameters as given (text read as JSON if it parses).
/// Every problem is listed, each naming the parameter.
pub fn resolve(
    specs: &Params,
    given: Vec<(String, Given)>,
) -> Result<Map<String, Value>, Vec<String>> {
    let mut out = Map::new();
    let mut problems = Vec::new();
    if specs.is_empty() {
        for (name, g) in given {
            let v = match g {
                Given::Json(v) => v,
                Given::Text(t) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
            };
            out.insert(name, v);
        }
        return Ok(out);
    }
    for (name, g) in given {
        let Some(spec) = specs.get(&name) else {
            let hint = crate::suggest::did_you_mean(&name, specs.keys().map(String::as_str));
            let declared: Vec<&str> = specs.keys().map(String::as_str).collect();
            problems.push(format!(
                "parameter `{name}`: the workflow declares no such parameter{hint} (it declares {})",
                declared.join(", ")
            ));
            continue;
        };
        let value = match g {
            Given::Json(v) if spec.kind.admits(&v) => v,
            // A form sends text; a number or boolean typed into it is read by the type.
            Given::Json(Value::String(t)) if spec.kind != ParamType::String => {
                match spec.kind.from_text(&t) {
                    Ok(v) => v,
                    Err(e) => {
                        problems.push(format!("parameter `{name}`: {e}"));
                        continue;
                    }
                }
            }
            Given::Json(v) => {
                problems.push(format!(
                    "parameter `{name}`: `{v}` is not {}",
                    spec.kind.article()
                ));
                continue;
            }
            Given::Text(t) => match spec.kind.from_text(&t) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!("parameter `{name}`: {e}"));
                    continue;
                }
            },
        };
        if let Some(allowed) = &spec.allowed {
            if !allowed.contains(&value) {
                let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
                problems.push(format!(
                    "parameter `{name}`: `{value}` is not one of {}",
                    list.join(", ")
                ));
                continue;
            }
        }
        out.insert(name, value);
    }
    for (name, spec) in specs {
        if out.contains_key(name)
            || problems
                .iter()
                .any(|p| p.starts_with(&format!("parameter `{name}`:")))
        {
            continue;
        }
        match (&spec.default, spec.required) {
            (Some(d), _) => {
                out.insert(name.clone(), d.clone());
            }
            (None, true) => {
                let about = spec
                    .description
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                problems.push(format!(
                    "parameter `{name}`{about} is required: give it as {} with `--param {name}=...` or in `params`",
                    spec.kind.article()
                ));
            }
            (None, false) => {}
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(kind: ParamType) -> ParamSpec {
        ParamSpec {
            kind,
            default: None,
            description: None,
            required: false,
            allowed: None,
        }
    }

    #[test]
    fn text_is_read_by_the_declared_type_and_defaults_fill_in() {
        let mut specs = Params::new();
        specs.insert("n".into(), spec(ParamType::Integer));
        specs.insert("label".into(), spec(ParamType::String));
        specs.insert(
            "dry".into(),
            ParamSpec {
                default: Some(json!(false)),
                ..spec(ParamType::Boolean)
            },
        );
        let got = resolve(
            &specs,
            vec![
                ("n".into(), Given::Text("42".into())),
                ("label".into(), Given::Text("42".into())),
            ],
        )
        .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"n": 42, "label": "42", "dry": false})
        );
    }

    #[test]
    fn every_problem_is_named() {
        let mut specs = Params::new();
        specs.insert(
            "day".into(),
            ParamSpec {
                required: true,
                description: Some("the day to process".into()),
                ..spec(ParamType::String)
            },
        );
        specs.insert("n".into(), spec(ParamType::Integer));
        specs.insert(
            "mode".into(),
            ParamSpec {
                allowed: Some(vec![json!("fast"), json!("full")]),
                ..spec(ParamType::String)
            },
        );
        let errs = resolve(
            &specs,
            vec![
                ("n".into(), Given::Json(json!(1.5))),
                ("mdoe".into(), Given::Json(json!("fast"))),
                ("mode".into(), Given::Json(json!("slow"))),
            ],
        )
        .unwrap_err();
        let all = errs.join("\n");
        assert!(
            all.contains("parameter `n`: `1.5` is not an integer"),
            "{all}"
        );
        assert!(
            all.contains("parameter `mdoe`") && all.contains("`mode`"),
            "{all}"
        );
        assert!(
            all.contains("`\"slow\"` is not one of \"fast\", \"full\""),
            "{all}"
        );
        assert!(
            all.contains("parameter `day` (the day to process) is required"),
            "{all}"
        );
        assert_eq!(errs.len(), 4, "{all}");
    }

    #[test]
    fn a_form_sends_text_for_numbers_and_booleans() {
        let mut specs = Params::new();
        specs.insert("n".into(), spec(ParamType::Number));
        specs.insert("b".into(), spec(ParamType::Boolean));
        let got = resolve(
            &specs,
            vec![
                ("n".into(), Given::Json(json!("2.5"))),
                ("b".into(), Given::Json(json!("true"))),
            ],
        )
        .unwrap();
        assert_eq!(Value::Object(got), json!({"n": 2.5, "b": true}));
        let err = resolve(&specs, vec![("b".into(), Given::Json(json!("yes")))]).unwrap_err();
        assert_eq!(
            err,
            ["parameter `b`: `yes` is not a boolean (true or false)"]
        );
    }

    #[test]
    fn without_declarations_anything_goes_as_before() {
        let got = resolve(
            &Params::new(),
            vec![
                ("n".into(), Given::Text("5".into())),
                ("s".into(), Given::Text("five".into())),
            ],
        )
        .unwrap();
        assert_eq!(Value::Object(got), json!({"n": 5, "s": "five"}));
    }
}
