//! A restricted reader of the pickles `torch.save` writes: it builds values, and it knows by name
//! the few callables that torch pickles for tensors. It never imports or calls anything; a pickle
//! that calls any other global is an error naming it. Sizes are checked against the input before
//! anything is allocated, and nesting and memo use are bounded, so a hostile file ends in an
//! error, never a panic, a hang or an allocation of the size it claims.

use std::collections::HashMap;

/// A value the restricted reader can build.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Keys and values in insertion order (`dict` and `collections.OrderedDict`).
    Dict(Vec<(Value, Value)>),
    /// A global named by the pickle, not resolved: `module.name`.
    Global(String, String),
    /// A storage a persistent id points at: its key, the storage class naming its dtype, and
    /// where in the keyed storage it starts (old checkpoints pickle views of a larger storage).
    Storage {
        key: String,
        class: String,
        offset: usize,
    },
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)`.
    Tensor(Tensor),
}

/// A tensor as torch pickles it: a view of a storage.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub key: String,
    /// The storage class (`FloatStorage`, `HalfStorage`, …), which names the dtype.
    pub class: String,
    /// In elements of the storage.
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// Deepest nesting of containers; torch's state dicts nest two or three levels.
const MAX_DEPTH: usize = 256;

/// Reads one pickle from `bytes`; returns its value and the length it took (the next pickle
/// of a legacy checkpoint starts there).
pub fn read(bytes: &[u8]) -> Result<(Value, usize), String> {
    Machine::new(bytes).run()
}

struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

fn int_of(v: &Value, what: &str) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(i64::from(*b)),
        other => Err(format!("{what} is {other:?}, not an integer")),
    }
}

fn usize_of(v: &Value, what: &str) -> Result<usize, String> {
    usize::try_from(int_of(v, what)?).map_err(|_| format!("{what} is negative"))
}

fn usizes(v: &Value, what: &str) -> Result<Vec<usize>, String> {
    match v {
        Value::Tuple(items) | Value::List(items) => {
            items.iter().map(|i| usize_of(i, what)).collect()
        }
        other => Err(format!("{what} is {other:?}, not a tuple")),
    }
}

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Machine {
            bytes,
            at: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "the pickle ends early (wants {n} bytes at byte {} of {})",
                    self.at,
                    self.bytes.len()
                )
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64, String> {
        let b = self.take(n)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(b);
        Ok(u64::from_le_bytes(v))
    }

    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.bytes[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a GLOBAL's name has no end of line")?;
        let s = std::str::from_utf8(&rest[..end]).map_err(|_| "a GLOBAL's name is not text")?;
        self.at += end + 1;
        Ok(s)
    }

    fn text(&mut self, n: usize) -> Result<Value, String> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec())
            .map(Value::Str)
            .map_err(|_| "a string in the pickle is not UTF-8".to_string())
    }

    fn pop(&mut self) -> Result<Value, String> {
        self.stack
            .pop()
            .ok_or_else(|| "the pickle pops an empty stack".into())
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let m = self.marks.pop().ok_or("the pickle has no MARK to pop to")?;
        if m > self.stack.len() {
            return Err("the pickle's MARK lies above its stack".into());
        }
        Ok(self.stack.split_off(m))
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "the pickle works on an empty stack".into())
    }

    fn push(&mut self, v: Value) -> Result<(), String> {
        if self.stack.len() > 1 << 20 {
            return Err("the pickle's stack grows past a million items".into());
        }
        self.stack.push(v);
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), String> {
        let v = self.top()?.clone();
        if self.memo.len() > 1 << 22 {
            return Err("the pickle memoises more than four million values".into());
        }
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), String> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("the pickle refers to memo {key}, which it never stored"))?;
        self.push(v)
    }

    fn run(mut self) -> Result<(Value, usize), String> {
        loop {
            if self.marks.len() > MAX_DEPTH {
                return Err(format!("the pickle nests deeper than {MAX_DEPTH} levels"));
            }
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(format!("pickle protocol {proto} is newer than 5"));
                    }
                }
                0x95 => {
                    self.le(8)?; // FRAME: a length hint only
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok((v, self.at));
                }
                b'(' => self.marks.push(self.stack.len()),
                _ => {
                    if !(self.scalar(op)?
                        || self.container(op)?
                        || self.memo(op)?
                        || self.object(op)?)
                    {
                        return Err(format!(
                            "the pickle uses opcode 0x{op:02x} at byte {}, which torch does not \
                             write for tensors",
                            self.at - 1
                        ));
                    }
                }
            }
        }
    }

    /// Opcodes that push a constant; false when `op` is not one of them.
    fn scalar(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b'N' => self.push(Value::None)?,
            0x88 => self.push(Value::Bool(true))?,
            0x89 => self.push(Value::Bool(false))?,
            b'J' => {
                let v = self.le(4)? as u32 as i32;
                self.push(Value::Int(v.into()))?
            }
            b'K' => {
                let v = self.u8()?;
                self.push(Value::Int(v.into()))?
            }
            b'M' => {
                let v = self.le(2)?;
                self.push(Value::Int(v as i64))?
            }
            0x8a => {
                let n = self.u8()? as usize;
                let b = self.take(n)?;
                if n > 8 {
                    // Only the legacy format's magic number is this long; keep its low bits.
                    let mut v = [0u8; 8];
                    v.copy_from_slice(&b[..8]);
                    self.push(Value::Int(i64::from_le_bytes(v)))?
                } else {
                    let mut v = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xffu8; 8]
                    } else {
                        [0u8; 8]
                    };
                    v[..n].copy_from_slice(b);
                    self.push(Value::Int(i64::from_le_bytes(v)))?
                }
            }
            b'G' => {
                let b = self.take(8)?;
                let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                self.push(Value::Float(v))?
            }
            b'X' => {
                let n = self.le(4)? as usize;
                let v = self.text(n)?;
                self.push(v)?
            }
            0x8c => {
                let n = self.u8()? as usize;
                let v = self.text(n)?;
                self.push(v)?
            }
            0x8d => {
                let n = usize::try_from(self.le(8)?).map_err(|_| "a string is too long")?;
                let v = self.text(n)?;
                self.push(v)?
            }
            // Python 2 strings and bytes: a one-byte or a four-byte length.
            b'U' | b'C' | b'T' | b'B' => {
                let n = if matches!(op, b'U' | b'C') {
                    self.u8()? as usize
                } else {
                    self.le(4)? as usize
                };
                let b = self.take(n)?.to_vec();
                self.push(Value::Bytes(b))?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Opcodes that build tuples, lists and dicts; false when `op` is not one of them.
    fn container(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b')' => self.push(Value::Tuple(Vec::new()))?,
            b']' => self.push(Value::List(Vec::new()))?,
            b'}' => self.push(Value::Dict(Vec::new()))?,
            b't' => {
                let items = self.pop_mark()?;
                self.push(Value::Tuple(items))?
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Value::List(items))?
            }
            b'd' => {
                let items = self.pop_mark()?;
                let dict = pairs(items)?;
                self.push(Value::Dict(dict))?
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return Err("the pickle makes a tuple of an empty stack".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push(Value::Tuple(items))?
            }
            b'a' => {
                let v = self.pop()?;
                match self.top()? {
                    Value::List(l) => l.push(v),
                    other => return Err(format!("the pickle appends to {}", kind(other))),
                }
            }
            b'e' => {
                let items = self.pop_mark()?;
                match self.top()? {
                    Value::List(l) => l.extend(items),
                    other => return Err(format!("the pickle appends to {}", kind(other))),
                }
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                match self.top()? {
                    Value::Dict(d) => d.push((k, v)),
                    other => return Err(format!("the pickle sets an item of {}", kind(other))),
                }
            }
            b'u' => {
                let items = self.pop_mark()?;
                let new = pairs(items)?;
                match self.top()? {
                    Value::Dict(d) => d.extend(new),
                    other => return Err(format!("the pickle sets items of {}", kind(other))),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Opcodes of the memo; false when `op` is not one of them.
    fn memo(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b'q' => {
                let k = self.u8()?;
                self.memo_put(k.into())?
            }
            b'r' => {
                let k = self.le(4)? as u32;
                self.memo_put(k)?
            }
            0x94 => {
                let k = self.memo.len() as u32;
                self.memo_put(k)?
            }
            b'h' => {
                let k = self.u8()?;
                self.memo_get(k.into())?
            }
            b'j' => {
                let k = self.le(4)? as u32;
                self.memo_get(k)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Opcodes of globals, persistent ids, calls and state; false when `op` is not one of them.
    fn object(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b'c' => {
                let module = self.line()?.to_owned();
                let name = self.line()?.to_owned();
                self.push(Value::Global(module, name))?
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.push(Value::Global(m, n))?,
                    _ => return Err("the pickle names a global by something not text".into()),
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                let v = storage(pid)?;
                self.push(v)?
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let v = call(callable, args)?;
                self.push(v)?
            }
            0x81 => {
                let args = self.pop()?;
                let class = self.pop()?;
                let v = call(class, args)?;
                self.push(v)?
            }
            b'b' => {
                // BUILD sets an object's state; torch uses it only for a state dict's
                // `_metadata`, which says nothing about the weights.
                let _state = self.pop()?;
                match self.top()? {
                    Value::Dict(_) | Value::Tensor(_) => {}
                    other => return Err(format!("the pickle builds {}", kind(other))),
                }
            }

            _ => return Ok(false),
        }
        Ok(true)
    }
}
fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::Int(_) => "an int",
        Value::Float(_) => "a float",
        Value::Str(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Tuple(_) => "a tuple",
        Value::List(_) => "a list",
        Value::Dict(_) => "a dict",
        Value::Global(..) => "a global",
        Value::Storage { .. } => "a storage",
        Value::Tensor(_) => "a tensor",
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("the pickle sets a dict from an odd number of items".into());
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// A persistent id: `('storage', storage_class, key, location, numel[, view])`.
fn storage(pid: Value) -> Result<Value, String> {
    let Value::Tuple(items) = pid else {
        return Err("a persistent id is not a tuple".into());
    };
    match items.as_slice() {
        [Value::Str(tag), Value::Global(_, class), key, ..] if tag == "storage" => {
            let key = match key {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                _ => return Err("a storage key is neither text nor a number".into()),
            };
            // Torch before 0.4 pickled views: (view_key, offset, size) of the keyed storage.
            let offset = match items.get(5) {
                Some(Value::Tuple(view)) => match view.as_slice() {
                    [_, off, _] => usize_of(off, "a storage view's offset")?,
                    _ => return Err("a storage view is not (key, offset, size)".into()),
                },
                _ => 0,
            };
            Ok(Value::Storage {
                key,
                class: class.clone(),
                offset,
            })
        }
        _ => Err("a persistent id is not torch's ('storage', class, key, …)".into()),
    }
}

/// The callables torch pickles around tensors, by name; anything else is refused, named.
fn call(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global(module, name) = callable else {
        return Err(format!(
            "the pickle calls {}, not a global",
            kind(&callable)
        ));
    };
    let Value::Tuple(args) = args else {
        return Err(format!(
            "the pickle calls {module}.{name} with {}",
            kind(&args)
        ));
    };
    match (module.as_str(), name.as_str(), args.as_slice()) {
        ("collections", "OrderedDict", []) => Ok(Value::Dict(Vec::new())),
        (
            "torch._utils",
            "_rebuild_tensor_v2" | "_rebuild_tensor",
            [st, offset, size, stride, ..],
        ) => {
            let Value::Storage {
                key,
                class,
                offset: view,
            } = st
            else {
                return Err(format!(
                    "{module}.{name} is given {} as its storage",
                    kind(st)
                ));
            };
            let offset = usize_of(offset, "a tensor's storage offset")?;
            Ok(Value::Tensor(Tensor {
                key: key.clone(),
                class: class.clone(),
                offset: offset
                    .checked_add(*view)
                    .ok_or("a tensor's storage offset overflows")?,
                shape: usizes(size, "a tensor's size")?,
                stride: usizes(stride, "a tensor's stride")?,
            }))
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state", [data, ..]) => {
            Ok(data.clone())
        }
        _ => Err(format!(
            "the checkpoint calls {module}.{name}, which aldfit does not run (it reads tensors \
             and never executes code from a file); save the state dict alone with \
             torch.save(model.state_dict(), PATH)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pickle.dumps(collections.OrderedDict(a=1, b=[2.5, 'x']), protocol=2)` as CPython writes
    /// it (hand-assembled from `pickletools.dis` of that call).
    #[test]
    fn reads_an_ordered_dict_of_python_values() {
        let mut p = vec![0x80, 2, b'c'];
        p.extend_from_slice(b"collections\nOrderedDict\n");
        p.extend_from_slice(&[b'q', 0, b')', b'R', b'q', 1, b'(', b'X', 1, 0, 0, 0, b'a']);
        p.extend_from_slice(&[b'K', 1, b'X', 1, 0, 0, 0, b'b', b']', b'q', 2, b'(', b'G']);
        p.extend_from_slice(&2.5f64.to_be_bytes());
        p.extend_from_slice(&[b'X', 1, 0, 0, 0, b'x', b'e', b'u', b'.']);
        let (v, used) = read(&p).unwrap();
        assert_eq!(used, p.len());
        assert_eq!(
            v,
            Value::Dict(vec![
                (Value::Str("a".into()), Value::Int(1)),
                (
                    Value::Str("b".into()),
                    Value::List(vec![Value::Float(2.5), Value::Str("x".into())])
                ),
            ])
        );
    }

    #[test]
    fn refuses_other_globals_by_name_and_never_panics_on_junk() {
        let mut p = vec![0x80, 2, b'c'];
        p.extend_from_slice(b"os\nsystem\n(X\x02\x00\x00\x00lstR.");
        let e = read(&p).unwrap_err();
        assert!(
            e.contains("os.system") && e.contains("never executes"),
            "{e}"
        );
        for bad in [
            &b""[..],
            b"(",
            b"t",
            b"h\x05",
            b"\x8a\xff",
            b"X\xff\xff\xff\xff",
            b"s.",
            b"\x99",
        ] {
            assert!(read(bad).is_err());
        }
    }
}
