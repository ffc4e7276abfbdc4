//! A run's `--out` folder, written as one set: the files of a run appear together or not at all.
//!
//! A run writes into a fresh sibling folder (`.NAME.aldfit-new-…`) and, once every file is
//! written and synced, swaps it in for `--out` (one `renameat2(RENAME_EXCHANGE)` on Linux; two
//! renames where the file system refuses the exchange), then removes the previous set. Until
//! then the previous complete set stays as it was; afterwards nothing of it is left, so files of
//! earlier runs that the new set lacks (old plots, old split files) are gone.
//!
//! A lock file beside the folder (`.NAME.aldfit-lock`, flock'ed) lets one run at a time write a
//! given `--out`; a second fails at once. Holding the lock, a run removes what a killed run left
//! (staging folders, or a previous set moved aside between the two renames, which it puts back).
//! SIGINT and SIGTERM remove the staging folder before the process exits (see
//! [`install_signal_handlers`]). Files and folders are created with the process's umask.
//!
//! Because the whole folder is replaced, a `--out` that holds files aldfit did not write (no
//! aldfit `run.json`) is refused rather than replaced.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Staging folders of runs in progress, removed by the signal handler.
static STAGING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The output folder of one run, while it is being written.
#[derive(Debug)]
pub struct OutputSet {
    target: PathBuf,
    staging: PathBuf,
    /// Held until the set is committed or dropped.
    _lock: File,
    committed: bool,
}

impl OutputSet {
    /// Claims `target` for this run: takes its lock, clears what killed runs left, checks that
    /// the folder is aldfit's to replace, and creates the staging folder the run writes into.
    pub fn begin(target: &Path) -> Result<Self> {
        let (parent, name) = split_target(target)?;
        // Checked again under the lock; checked first so that a refused folder gets no lock
        // file beside it.
        check_replaceable(target)?;
        fs::create_dir_all(&parent).map_err(|err| write_err(&parent, err))?;
        let lock_path = parent.join(format!(".{name}.aldfit-lock"));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|err| write_err(&lock_path, err))?;
        if lock.try_lock().is_err() {
            return Err(Error::Invalid(format!(
                "another aldfit run is writing to {} (it holds {}); wait for it to finish or \
                 choose another --out",
                target.display(),
                lock_path.display()
            )));
        }
        clear_leftovers(&parent, &name, target)?;
        check_replaceable(target)?;
        let staging = parent.join(format!(
            ".{name}.aldfit-new-{}-{}",
            std::process::id(),
            nanos()
        ));
        fs::create_dir(&staging).map_err(|err| write_err(&staging, err))?;
        if let Ok(mut list) = STAGING.lock() {
            list.push(staging.clone());
        }
        Ok(OutputSet {
            target: target.to_owned(),
            staging,
            _lock: lock,
            committed: false,
        })
    }

    /// Where the run writes its files until [`commit`](Self::commit).
    pub fn dir(&self) -> &Path {
        &self.staging
    }

    /// The folder the set becomes.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes `bytes` to `name` in the set (synced: the swap must not expose a file the disk
    /// has not got).
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write_with(name, |w| w.write_all(bytes))
    }

    /// Writes `name` in the set as `fill` renders it, through a buffer: a file of a million
    /// classes streams to disk instead of being held whole. An error, the renderer's or the
    /// disk's, names the file.
    pub fn write_with(
        &self,
        name: &str,
        fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let mut f = self.create(name)?;
        f.write(fill)?;
        f.finish()
    }

    /// Opens `name` in the set for writing piece by piece, as results arrive.
    pub fn create(&self, name: &str) -> Result<StagedFile> {
        let path = self.staging.join(name);
        let shown = self.target.join(name);
        let f = File::create(&path).map_err(|err| write_err(&shown, err))?;
        Ok(StagedFile {
            w: std::io::BufWriter::with_capacity(1 << 20, f),
            shown,
        })
    }

    /// Makes the written set the `--out` folder and removes the previous one.
    pub fn commit(mut self) -> Result<()> {
        sync_tree(&self.staging).map_err(|err| write_err(&self.target, err))?;
        let (parent, name) = split_target(&self.target)?;
        if self.target.exists() {
            let old = parent.join(format!(
                ".{name}.aldfit-old-{}-{}",
                std::process::id(),
                nanos()
            ));
            // The previous set now sits where the exchange or the rename put it; removing it
            // cannot touch the new set.
            let previous = swap_in(&self.staging, &self.target, &old)?;
            let _ = fs::remove_dir_all(previous);
        } else {
            fs::rename(&self.staging, &self.target).map_err(|err| write_err(&self.target, err))?;
        }
        if let Ok(dir) = File::open(&parent) {
            let _ = dir.sync_all();
        }
        self.committed = true;
        forget_staging(&self.staging);
        Ok(())
    }
}

impl Drop for OutputSet {
    /// A run that ends without committing leaves `--out` as it was.
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
            forget_staging(&self.staging);
        }
    }
}

/// Removes `path` (a file or folder being written) if SIGINT or SIGTERM comes before
/// [`forget_on_signals`] (with [`install_signal_handlers`] installed).
pub fn remove_on_signals(path: &Path) {
    if let Ok(mut list) = STAGING.lock() {
        list.push(path.to_owned());
    }
}

/// Undoes [`remove_on_signals`] once `path` is complete or gone.
pub fn forget_on_signals(path: &Path) {
    forget_staging(path);
}

/// For the CLI (a library must not take a process's signals): on SIGINT and SIGTERM, removes
/// the staging folders and temporary files of the run in progress, then exits with 130 (the
/// handler cannot tell the two apart). On SIGBUS, which a memory-mapped input raises when it
/// shrinks under the run, says so in one line, removes the same and exits with 1.
pub fn install_signal_handlers() {
    let _ = ctrlc::set_handler(|| {
        remove_registered(true);
        eprintln!("aldfit: interrupted; --out is as it was before this run");
        std::process::exit(130);
    });
    // SAFETY: installs a handler for a synchronous fault; the handler writes with write(2),
    // removes files (best effort, never waiting for the registry's lock) and _exits.
    unsafe {
        libc::signal(
            libc::SIGBUS,
            on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// The files memory-mapped so far, for the SIGBUS message.
static MAPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The SIGBUS message naming [`MAPPED`], built ahead (a signal handler cannot format): a leaked
/// buffer, replaced (and the old one leaked too, a few bytes a mapped file) as files are mapped.
static SIGBUS_MSG: AtomicPtr<Vec<u8>> = AtomicPtr::new(std::ptr::null_mut());

/// Records that `path` is memory-mapped, so that a SIGBUS (the file shrank under the map) is
/// reported naming it.
pub fn note_mapped(path: &Path) {
    let Ok(mut files) = MAPPED.lock() else {
        return;
    };
    let shown = crate::text::printable(&path.display().to_string());
    if !files.contains(&shown) {
        files.push(shown);
    }
    let (what, it) = match files.len() {
        1 => (files[0].clone(), "the file"),
        _ => (files.join(" or "), "one of these files"),
    };
    let msg = format!(
        "aldfit: error: {what}: {it} changed size while aldfit was reading it (SIGBUS on its \
         memory map); nothing was written to --out. Leave checkpoints unchanged while aldfit \
         runs, or copy them first.\n"
    );
    SIGBUS_MSG.store(Box::into_raw(Box::new(msg.into_bytes())), Ordering::SeqCst);
}

extern "C" fn on_sigbus(_: libc::c_int) {
    const MSG: &[u8] = b"aldfit: error: an input file changed size while aldfit was reading \
it (SIGBUS on its memory map); nothing was written to --out. Leave checkpoints unchanged while \
aldfit runs, or copy them first.\n";
    // Several threads read the map: the first to fault reports and exits; the others wait for
    // that exit instead of repeating the message or cutting its clean-up short.
    static REPORTING: AtomicBool = AtomicBool::new(false);
    if REPORTING.swap(true, Ordering::SeqCst) {
        loop {
            // SAFETY: pause is async-signal-safe; the reporting thread's _exit ends this one.
            unsafe { libc::pause() };
        }
    }
    let named = SIGBUS_MSG.load(Ordering::SeqCst);
    // SAFETY: a non-null SIGBUS_MSG points at a leaked, never-freed buffer. write(2) and _exit
    // are async-signal-safe.
    let msg: &[u8] = if named.is_null() {
        MSG
    } else {
        unsafe { &*named }
    };
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
    }
    remove_registered(false);
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(1) }
}

/// Removes every registered staging folder and temporary file; in a signal handler
/// (`wait` false) only if the registry is free.
fn remove_registered(wait: bool) {
    let list = if wait {
        STAGING.lock().ok()
    } else {
        STAGING.try_lock().ok()
    };
    if let Some(list) = list {
        for path in list.iter() {
            if path.is_dir() {
                let _ = fs::remove_dir_all(path);
            } else {
                let _ = fs::remove_file(path);
            }
        }
    }
}

fn forget_staging(dir: &Path) {
    if let Ok(mut list) = STAGING.lock() {
        list.retain(|d| d != dir);
    }
}

/// A file of an [`OutputSet`] being written: errors name the file as it will be called.
pub struct StagedFile {
    w: std::io::BufWriter<File>,
    shown: PathBuf,
}

impl StagedFile {
    /// Appends what `fill` renders.
    pub fn write(
        &mut self,
        fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        fill(&mut self.w).map_err(|err| write_err(&self.shown, err))
    }

    /// Flushes and syncs the file (the swap must not expose a file the disk has not got).
    pub fn finish(mut self) -> Result<()> {
        self.w.flush().map_err(|err| write_err(&self.shown, err))?;
        self.w
            .get_ref()
            .sync_all()
            .map_err(|err| write_err(&self.shown, err))
    }
}

fn write_err(path: &Path, err: std::io::Error) -> Error {
    Error::Write {
        path: path.to_owned(),
        err,
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The folder `target` lives in and its name.
fn split_target(target: &Path) -> Result<(PathBuf, String)> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "--out {} does not name a folder aldfit can replace; give a folder such as \
                 aldfit-out",
                target.display()
            ))
        })?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_owned()))
}

/// With the lock held: staging folders of killed runs are removed; a previous set moved aside
/// by a run killed between its two renames is put back (or removed, if a set is in place).
fn clear_leftovers(parent: &Path, name: &str, target: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Ok(());
    };
    let new = format!(".{name}.aldfit-new-");
    let old = format!(".{name}.aldfit-old-");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let path = entry.path();
        if file.starts_with(&new) {
            let _ = fs::remove_dir_all(&path);
        } else if file.starts_with(&old) {
            if target.exists() {
                let _ = fs::remove_dir_all(&path);
            } else {
                fs::rename(&path, target).map_err(|err| write_err(target, err))?;
            }
        }
    }
    Ok(())
}

/// Refuses a `--out` that is a file, or a folder of files aldfit did not write: the swap would
/// delete them.
fn check_replaceable(target: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(write_err(target, err)),
    };
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "--out {} is not a folder; choose a new or empty folder for the results",
            target.display()
        )));
    }
    let mut entries = fs::read_dir(target).map_err(|err| write_err(target, err))?;
    if entries.next().is_none() || is_aldfit_set(target) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "--out {} holds files that are not an aldfit run (no aldfit run.json); aldfit replaces \
         its output folder as a whole, so choose a new or empty folder",
        target.display()
    )))
}

/// Whether `dir` holds an aldfit run's record.
fn is_aldfit_set(dir: &Path) -> bool {
    fs::read(dir.join("run.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("aldfit_version").is_some())
}

/// Syncs every file below `dir`, and `dir` itself.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            File::open(entry.path())?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()
}

/// Puts `staging` in place of `target`; returns where the previous `target` is now.
fn swap_in(staging: &Path, target: &Path, old: &Path) -> Result<PathBuf> {
    if exchange(staging, target).is_ok() {
        return Ok(staging.to_owned());
    }
    // No exchange here: `target` is absent for the moment between the renames; a run killed
    // then leaves the previous set at `old`, which the next run puts back.
    fs::rename(target, old).map_err(|err| write_err(target, err))?;
    fs::rename(staging, target).map_err(|err| write_err(target, err))?;
    Ok(old.to_owned())
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths relative to the working directory; renameat2 reads them
    // and touches no memory of ours.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}
