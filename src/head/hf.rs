//! What a Hugging Face checkpoint folder says beside its weights: class names in `config.json`'s
//! `id2label` (image and text classifiers), and token strings in `tokenizer.json` (the labels of
//! a language model's head, by token id).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Labels for a head of `classes` rows stored in `weights` (a file in the checkpoint's folder),
/// and the file they came from: `id2label` when it names exactly `classes` ids, else the
/// tokenizer's vocabulary when its ids fit the head (a head padded past the vocabulary gets
/// empty labels for the padding). `None` when neither file is there or fits.
pub fn labels_beside(weights: &Path, classes: usize) -> Result<Option<(Vec<String>, PathBuf)>> {
    let folder = match weights.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let config = folder.join("config.json");
    if config.is_file() {
        if let Some(labels) = id2label(&config, classes)? {
            return Ok(Some((labels, config)));
        }
    }
    let tokenizer = folder.join("tokenizer.json");
    if tokenizer.is_file() {
        if let Some(labels) = vocabulary(&tokenizer, classes)? {
            return Ok(Some((labels, tokenizer)));
        }
    }
    Ok(None)
}

fn json(path: &Path) -> Result<serde_json::Value> {
    let text = super::read_text(path)?;
    serde_json::from_str(&text).map_err(|e| Error::Format {
        path: path.to_owned(),
        msg: format!("is not valid JSON: {e}"),
    })
}

/// Labels by id, when the ids are exactly `0..classes`.
fn by_id(pairs: impl Iterator<Item = (usize, String)>, classes: usize) -> Option<Vec<String>> {
    let mut labels = vec![None; classes];
    for (id, label) in pairs {
        *labels.get_mut(id)? = Some(label);
    }
    labels.into_iter().collect()
}

fn id2label(config: &Path, classes: usize) -> Result<Option<Vec<String>>> {
    let v = json(config)?;
    let Some(map) = v.get("id2label").and_then(|m| m.as_object()) else {
        return Ok(None);
    };
    // Language models' configs carry a default {"0": "LABEL_0", "1": "LABEL_1"}: it fits
    // only a two-row head, and a head of that size is rarely an LM's.
    let pairs = map.iter().filter_map(|(k, v)| {
        let id = k.parse::<usize>().ok()?;
        Some((id, v.as_str()?.to_owned()))
    });
    Ok(if map.len() == classes {
        by_id(pairs, classes)
    } else {
        None
    })
}

fn vocabulary(tokenizer: &Path, classes: usize) -> Result<Option<Vec<String>>> {
    let v = json(tokenizer)?;
    let mut tokens: Vec<(usize, String)> = Vec::new();
    match v.pointer("/model/vocab") {
        // BPE and WordPiece: {token: id}.
        Some(serde_json::Value::Object(map)) => {
            tokens.extend(
                map.iter()
                    .filter_map(|(t, id)| Some((id.as_u64()? as usize, t.clone()))),
            );
        }
        // Unigram: [[token, score], …] in id order.
        Some(serde_json::Value::Array(list)) => tokens.extend(
            list.iter()
                .enumerate()
                .filter_map(|(id, e)| Some((id, e.get(0)?.as_str()?.to_owned()))),
        ),
        _ => {}
    }
    if let Some(added) = v.get("added_tokens").and_then(|a| a.as_array()) {
        tokens.extend(added.iter().filter_map(|t| {
            Some((
                t.get("id")?.as_u64()? as usize,
                t.get("content")?.as_str()?.to_owned(),
            ))
        }));
    }
    // The head may be padded past the vocabulary (to a multiple of 64 or 128); never shorter.
    if tokens.is_empty()
        || tokens.iter().any(|(id, _)| *id >= classes)
        || tokens.len() * 2 < classes
    {
        return Ok(None);
    }
    let mut labels = vec![String::new(); classes];
    for (id, t) in tokens {
        labels[id] = t;
    }
    Ok(Some(labels))
}

/// How many labels `config.json` beside `weights` names in `id2label`, if it is there.
pub fn id2label_len(weights: &Path) -> Option<usize> {
    let folder = weights.parent().filter(|p| !p.as_os_str().is_empty())?;
    let config = folder.join("config.json");
    if !config.is_file() {
        return None;
    }
    let v = json(&config).ok()?;
    v.get("id2label")?.as_object().map(|m| m.len())
}
