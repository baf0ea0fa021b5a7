//! The stage payloads as JSON schemas generated from the Rust types each function reads and
//! writes (`functions/schemas/`, committed so that a change of contract shows in review), and
//! `statemachine.asl.json` checked against them: every field a Task passes is one its function
//! reads, every field the function requires is passed, and every `$.Payload.<field>` the state
//! machine selects from a result is one the function always writes (a field left out when
//! empty would fail the state at run time, not here).
//!
//! No service needed. `REVIEWS_UPDATE_SCHEMAS=1 cargo test -p reviews-functions-tests --test
//! payload_schemas` (or `cargo xtask schemas`) rewrites the files after a deliberate change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use schemars::generate::{Contract, SchemaSettings};
use serde_json::{Value, json};

/// One event a function accepts and what it answers to it.
struct Payload {
    /// `<function>.<event>`: the schema files' stem.
    name: &'static str,
    input: Value,
    output: Value,
}

/// The functions of the state machine, by the placeholder of their ARN in the ASL.
struct Function {
    arn: &'static str,
    payloads: Vec<Payload>,
}

fn schema<T: JsonSchema>(contract: Contract) -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.contract = contract;
        s.inline_subschemas = true;
    });
    serde_json::to_value(settings.into_generator().into_root_schema_for::<T>()).expect("schema")
}

fn payload<I: JsonSchema, O: JsonSchema>(name: &'static str) -> Payload {
    Payload {
        name,
        input: schema::<I>(Contract::Deserialize),
        output: schema::<O>(Contract::Serialize),
    }
}

fn functions() -> Vec<Function> {
    vec![
        Function {
            arn: "${ExtractFunctionArn}",
            payloads: vec![payload::<
                reviews_extract_function::ExtractEvent,
                reviews_extract_function::ExtractResult,
            >("extract")],
        },
        Function {
            arn: "${ArchiveFunctionArn}",
            payloads: vec![payload::<
                reviews_archive_function::ArchiveEvent,
                reviews_stages::ArchiveOutput,
            >("archive")],
        },
        Function {
            arn: "${TransformFunctionArn}",
            payloads: vec![
                payload::<reviews_stages::RoutePartInput, reviews_stages::RoutePartOutput>(
                    "transform.route",
                ),
                payload::<reviews_stages::TransformInput, reviews_stages::TransformOutput>(
                    "transform.plan",
                ),
            ],
        },
        Function {
            arn: "${ScoreFunctionArn}",
            payloads: vec![payload::<
                reviews_stages::BucketItem,
                reviews_stages::BucketOutput,
            >("score")],
        },
        Function {
            arn: "${PublishFunctionArn}",
            payloads: vec![
                payload::<reviews_stages::PublishInput, reviews_stages::PublishOutput>("publish"),
                payload::<
                    reviews_publish_function::ReleaseInput,
                    reviews_publish_function::LeaseReleased,
                >("publish.release"),
            ],
        },
    ]
}

/// The items of a Distributed Map with an ItemReader: the plan's `items_key` object.
fn map_item_schema() -> Value {
    schema::<reviews_stages::BucketItem>(Contract::Serialize)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema_files() -> BTreeMap<String, Value> {
    let mut files = BTreeMap::new();
    for f in functions() {
        for p in f.payloads {
            files.insert(format!("{}.input.json", p.name), p.input);
            files.insert(format!("{}.output.json", p.name), p.output);
        }
    }
    files.insert("transform.plan.items.json".into(), map_item_schema());
    files
}

#[test]
fn committed_schemas_are_those_of_the_rust_types() {
    let dir = repo_root().join("functions/schemas");
    let update = std::env::var_os("REVIEWS_UPDATE_SCHEMAS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (file, schema) in schema_files() {
        let path = dir.join(&file);
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "functions/schemas/ differs from the Rust types for {stale:?}: if the change is meant, \
         run `cargo xtask schemas` and commit the files"
    );
}

/// An object schema's properties and required names.
fn fields(schema: &Value) -> (BTreeMap<String, Value>, BTreeSet<String>) {
    let props = schema["properties"]
        .as_object()
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    let required = schema["required"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (props, required)
}

/// Whether `path` (field names) is always present in a value of `schema`.
fn always_written(schema: &Value, path: &[&str]) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(());
    };
    let (props, required) = fields(schema);
    let Some(sub) = props.get(*first) else {
        return Err(format!("`{first}` is not a field"));
    };
    if !required.contains(*first) {
        return Err(format!("`{first}` is left out of some results"));
    }
    always_written(sub, rest)
}

/// The field path a `$.Payload.a.b` reference selects, if it is one.
fn payload_path(reference: &str) -> Option<Vec<&str>> {
    reference
        .strip_prefix("$.Payload.")
        .map(|p| p.split('.').collect())
}

/// Checks one Task state against its function's payloads; returns the problems found.
fn check_task(state: &str, task: &Value, function: &Function) -> Vec<String> {
    let mut problems = Vec::new();
    let passed: BTreeSet<String> = task["Parameters"]["Payload"]
        .as_object()
        .map(|m| {
            m.keys()
                .map(|k| k.trim_end_matches(".$").to_owned())
                .collect()
        })
        .unwrap_or_default();
    let matching: Vec<&Payload> = function
        .payloads
        .iter()
        .filter(|p| {
            let (props, required) = fields(&p.input);
            passed.iter().all(|k| props.contains_key(k)) && required.is_subset(&passed)
        })
        .collect();
    let [event] = matching.as_slice() else {
        let names: Vec<_> = function.payloads.iter().map(|p| p.name).collect();
        problems.push(format!(
            "{state}: passes {passed:?}, which matches {} of the events of {names:?} (fields \
             unknown to the function, or a required one missing)",
            matching.len()
        ));
        return problems;
    };
    if let Some(selector) = task["ResultSelector"].as_object() {
        for (key, reference) in selector {
            let Some(path) = reference.as_str().and_then(payload_path) else {
                continue;
            };
            if let Err(why) = always_written(&event.output, &path) {
                problems.push(format!(
                    "{state}: {key} reads $.Payload.{}, but in {}'s output {why}",
                    path.join("."),
                    event.name
                ));
            }
        }
    }
    problems
}

/// Every Task and Map state of the definition, through Parallel branches and Map processors.
fn walk<'a>(states: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
    let Some(states) = states.as_object() else {
        return;
    };
    for (name, state) in states {
        out.push((name, state));
        for branch in state["Branches"].as_array().into_iter().flatten() {
            walk(&branch["States"], out);
        }
        walk(&state["ItemProcessor"]["States"], out);
        walk(&state["Iterator"]["States"], out);
    }
}

/// All the problems of a definition; also how many Task states were checked.
fn check_definition(asl: &Value) -> (Vec<String>, usize) {
    let functions = functions();
    let items = map_item_schema();
    let mut states = Vec::new();
    walk(&asl["States"], &mut states);
    let (mut problems, mut checked) = (Vec::new(), 0);
    for (name, state) in states {
        if state["Type"] == "Task" {
            let arn = state["Parameters"]["FunctionName"].as_str().unwrap_or("");
            match functions.iter().find(|f| f.arn == arn) {
                Some(f) => {
                    checked += 1;
                    problems.extend(check_task(name, state, f));
                }
                None => problems.push(format!("{name}: invokes {arn:?}, no known function")),
            }
        }
        // A Map reading its items from a lake object: the item fields it selects.
        if state["Type"] == "Map" && state.get("ItemReader").is_some() {
            for reference in state["ItemSelector"].as_object().into_iter().flatten() {
                let Some(path) = reference
                    .1
                    .as_str()
                    .and_then(|r| r.strip_prefix("$$.Map.Item.Value."))
                else {
                    continue;
                };
                let path: Vec<&str> = path.split('.').collect();
                if let Err(why) = always_written(&items, &path) {
                    problems.push(format!(
                        "{name}: selects item field {}, but {why}",
                        path.join(".")
                    ));
                }
            }
        }
    }
    (problems, checked)
}

fn definition() -> Value {
    let text = std::fs::read_to_string(repo_root().join("statemachine.asl.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_state_machine_passes_and_reads_what_the_functions_define() {
    let (problems, checked) = check_definition(&definition());
    assert!(problems.is_empty(), "statemachine.asl.json: {problems:#?}");
    // Extract, RoutePart, Transform, ReleaseLeaseUnpublished, MergeBucket, Publish, Archive,
    // ReleaseLease.
    assert!(checked >= 8, "only {checked} Task states found");
}

/// The JSON pointer of a state, found by name anywhere in `states` (at `at`).
fn state_pointer(states: &Value, at: &str, name: &str) -> Option<String> {
    let map = states.as_object()?;
    if map.contains_key(name) {
        return Some(format!("{at}/{name}"));
    }
    map.iter().find_map(|(n, state)| {
        let mut branches = state["Branches"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate();
        branches
            .find_map(|(i, b)| {
                state_pointer(&b["States"], &format!("{at}/{n}/Branches/{i}/States"), name)
            })
            .or_else(|| {
                state_pointer(
                    &state["ItemProcessor"]["States"],
                    &format!("{at}/{n}/ItemProcessor/States"),
                    name,
                )
            })
    })
}

fn state_mut<'a>(asl: &'a mut Value, name: &str) -> &'a mut Value {
    let pointer = state_pointer(&asl["States"], "/States", name).expect("state");
    asl.pointer_mut(&pointer).expect("state")
}

#[test]
fn a_mismatch_is_reported() {
    let mut asl = definition();
    // A result field no function writes.
    state_mut(&mut asl, "Extract")["ResultSelector"]["nope.$"] = json!("$.Payload.nope");
    // A required input left out.
    state_mut(&mut asl, "Archive")["Parameters"]["Payload"] = json!({});
    // A field the function does not read.
    state_mut(&mut asl, "MergeBucket")["Parameters"]["Payload"]["extra"] = json!(1);
    // An item field the plan does not write.
    state_mut(&mut asl, "MergeBuckets")["ItemSelector"]["x.$"] = json!("$$.Map.Item.Value.x");
    let (problems, _) = check_definition(&asl);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for state in ["Extract", "Archive", "MergeBucket", "MergeBuckets"] {
        assert!(
            problems.iter().any(|p| p.starts_with(&format!("{state}:"))),
            "{state} not reported: {problems:#?}"
        );
    }
}

#[test]
fn a_result_field_left_out_when_empty_is_reported() {
    #[derive(serde::Serialize, JsonSchema)]
    #[allow(dead_code)]
    struct Out {
        always: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sometimes: Option<String>,
    }
    let out = schema::<Out>(Contract::Serialize);
    assert!(always_written(&out, &["always"]).is_ok());
    assert_eq!(
        always_written(&out, &["sometimes"]).unwrap_err(),
        "`sometimes` is left out of some results"
    );
    assert!(always_written(&out, &["missing"]).is_err());
}
