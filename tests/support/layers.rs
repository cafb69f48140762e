//! Layers a test makes for chapter 8 on: directories every user may read, so the rootless
//! test user's runtime can stack them too, with files, whiteouts and opaque directories
//! as an image's layers have them. Removed when dropped.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{Invocation, Runtime};

/// A directory of layers, open to all, whose files belong to the user who runs the
/// runtime: a rootless user's layers are its own (chapter 9 unpacks them so), and a file
/// of an id its user namespace does not map could not be changed, and so copied up.
pub struct TestLayers {
    dir: tempfile::TempDir,
    owner: Option<(u32, u32)>,
}

impl TestLayers {
    /// Layers for `runtime`'s containers.
    pub fn for_runtime(runtime: &Runtime) -> TestLayers {
        let dir = tempfile::Builder::new()
            .prefix("byoc-layers-")
            .tempdir()
            .expect("a temp dir for the layers");
        open_to_all(dir.path());
        let owner = runtime.rootless.as_ref().map(|r| (r.user.uid, r.user.gid));
        TestLayers { dir, owner }
    }

    /// Gives `path` to the runtime's user, when that is not this process's.
    pub fn own(&self, path: &Path) {
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                .unwrap_or_else(|error| panic!("chown {path:?}: {error}"));
        }
    }

    /// A new layer `name`, holding each `(path, contents)` of `files`.
    pub fn layer(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let layer = self.dir.path().join(name);
        std::fs::create_dir(&layer).expect("make a layer");
        open_to_all(&layer);
        self.own(&layer);
        for (path, contents) in files {
            self.write(&layer, path, contents);
        }
        layer
    }

    /// Writes `contents` to `path` in `layer`, making the directories on the way.
    pub fn write(&self, layer: &Path, path: &str, contents: &str) {
        let file = layer.join(path);
        let parent = file.parent().expect("a file has a parent");
        std::fs::create_dir_all(parent).expect("make the file's directories");
        open_to_all(parent);
        self.own(parent);
        std::fs::write(&file, contents).expect("write a layer's file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))
            .expect("chmod a layer's file");
        self.own(&file);
    }

    /// A whiteout at `path` in `layer`: a character device 0/0, as overlay makes one
    /// (any user may, since Linux 5.8).
    pub fn whiteout(&self, layer: &Path, path: &str) {
        use std::os::unix::ffi::OsStrExt;
        let file = layer.join(path);
        let file_c = std::ffi::CString::new(file.as_os_str().as_bytes()).expect("no NUL");
        // SAFETY: the path is NUL-terminated and lives across the call.
        let made = unsafe { libc::mknod(file_c.as_ptr(), libc::S_IFCHR | 0o644, 0) };
        assert_eq!(
            made,
            0,
            "mknod a whiteout at {file:?}: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Marks directory `path` in `layer` opaque: the layers below it are hidden there.
    /// With the names overlay reads: `user.` in a user namespace (`userxattr`), and, when
    /// the tests run as root (only root may write `trusted.` attributes), `trusted.` as
    /// the machine's root mounts it.
    pub fn opaque(&self, layer: &Path, path: &str) {
        let dir = layer.join(path);
        std::fs::create_dir_all(&dir).expect("make the opaque directory");
        open_to_all(&dir);
        self.own(&dir);
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let names: &[&str] = match root {
            true => &["trusted.overlay.opaque", "user.overlay.opaque"],
            false => &["user.overlay.opaque"],
        };
        for name in names {
            xattr_set(&dir, name, b"y");
        }
    }

    /// `count` layers, each with one file `layer-N` holding `N`.
    pub fn many(&self, count: usize) -> Vec<PathBuf> {
        (0..count)
            .map(|n| {
                let name = format!("{n:03}");
                self.layer(&name, &[(&format!("layer-{n}"), &format!("{n}\n"))])
            })
            .collect()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Whether overlay marked `dir` opaque: `trusted.overlay.opaque` as the machine's root
/// mounts it, `user.overlay.opaque` in a user namespace.
pub fn overlay_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| xattr_get(dir, name).as_deref() == Some(b"y".as_slice()))
}

fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path_c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let name_c = std::ffi::CString::new(name).ok()?;
    let mut value = [0u8; 16];
    // SAFETY: the strings are NUL-terminated; the buffer's pointer and length match.
    let size = unsafe {
        libc::lgetxattr(
            path_c.as_ptr(),
            name_c.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    (size >= 0).then(|| value[..size as usize].to_vec())
}

fn open_to_all(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|error| panic!("chmod {path:?}: {error}"));
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let path_c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL");
    let name_c = std::ffi::CString::new(name).expect("no NUL");
    // SAFETY: both strings are NUL-terminated and live across the call; the value's
    // pointer and length describe one slice.
    let set = unsafe {
        libc::lsetxattr(
            path_c.as_ptr(),
            name_c.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        set,
        0,
        "setxattr {name} on {path:?}: {}",
        std::io::Error::last_os_error()
    );
}

impl Runtime {
    /// `run --layer L1 --layer L2 ... OPTIONS -- COMMAND`: a container on `layers`, lowest
    /// first, the root filesystem among them as the test puts it.
    pub fn on_layers(
        &self,
        layers: &[&Path],
        options: &[&str],
        command: &[&str],
    ) -> Invocation {
        let mut args: Vec<&std::ffi::OsStr> = vec!["run".as_ref()];
        for layer in layers {
            args.push("--layer".as_ref());
            args.push(layer.as_os_str());
        }
        self.invocation()
            .args(args)
            .args(options)
            .args(["--"])
            .args(command)
    }

    /// The data root this runtime's containers are kept under.
    pub fn data_dir(&self) -> PathBuf {
        match &self.rootless {
            Some(rootless) => rootless.staged.data_root.clone(),
            None => self.data_root.path().to_path_buf(),
        }
    }

    /// The containers' directories under the data root (`containers/ID/`).
    pub fn container_dirs(&self) -> Vec<PathBuf> {
        let containers = self.data_dir().join("containers");
        match std::fs::read_dir(&containers) {
            Ok(entries) => entries
                .map(|entry| entry.expect("an entry").path())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}
