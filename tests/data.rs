//! Data: IDX parsing (every defect names the file), the lookup order of known datasets,
//! verified downloads through a local HTTP server, image folders, and the real files.

mod common;
use common::http::{Reply, Server};
use common::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gpu_cnn::data::cifar;
use gpu_cnn::data::folder::{self, Color, FolderOptions};
use gpu_cnn::data::idx::{self, parse_idx, read_idx, sha256_hex};
use gpu_cnn::data::registry::{Format, KnownDataset, KnownFile, CIFAR10, FASHION_MNIST, MNIST};
use gpu_cnn::data::{self, fetch, Dataset, Env};

fn parse(bytes: &[u8]) -> Result<idx::Idx, String> {
    parse_idx(bytes, Path::new("mem.idx")).map_err(|e| e.to_string())
}

#[test]
fn parses_images_and_labels() {
    let idx = parse(&idx_bytes(
        &[2, 2, 3],
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    ))
    .unwrap();
    assert_eq!(idx.dims, vec![2, 2, 3]);
    assert_eq!(idx.data, (1..=12).collect::<Vec<u8>>());
    assert_eq!(
        parse(&idx_bytes(&[3], &[7, 8, 9])).unwrap().data,
        vec![7, 8, 9]
    );
}

#[test]
fn rejects_bad_files_with_the_reason() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty file"),
        (
            "short header",
            vec![0, 0],
            "truncated in the 4-byte IDX header",
        ),
        ("bad magic", b"PK\x03\x04rest".to_vec(), "not an IDX file"),
        (
            "float type",
            vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0],
            "element type 0x0d is not supported",
        ),
        ("no dims", vec![0, 0, 8, 0], "0 dimensions"),
        (
            "short dims",
            vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0],
            "truncated in the IDX dimensions",
        ),
        (
            "short data",
            idx_bytes(&[2, 2, 2], &[1, 2, 3]),
            "truncated: header [2, 2, 2] declares 8 bytes of data, file has 3",
        ),
        (
            "trailing",
            idx_bytes(&[2], &[1, 2, 3]),
            "1 bytes of trailing data",
        ),
        // Billions of images claimed in a 16-byte file: refused before any allocation.
        ("huge", idx_bytes(&[65536, 65536, 2], &[]), "larger than"),
        (
            "billions, short",
            idx_bytes(&[1_000_000_000, 1, 1], &[1, 2]),
            "declares 1000000000 bytes of data, file has 2",
        ),
    ];
    for (what, bytes, want) in cases {
        let err = parse(&bytes).expect_err(what);
        assert!(
            err.contains("mem.idx") && err.contains(want),
            "{what}: {err}"
        );
    }
}

#[test]
fn reads_gzip_and_raw_files_and_names_bad_ones() {
    let dir = temp_dir("idx-files");
    let raw = idx_bytes(&[4], &[1, 2, 3, 4]);
    std::fs::write(dir.join("a"), &raw).unwrap();
    std::fs::write(dir.join("b.gz"), gzip(&raw)).unwrap();
    assert_eq!(read_idx(&dir.join("a")).unwrap().data, vec![1, 2, 3, 4]);
    assert_eq!(read_idx(&dir.join("b.gz")).unwrap().data, vec![1, 2, 3, 4]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("cut.gz", gzip(&raw)[..20].to_vec(), "corrupt gzip stream"),
        (
            "junk.gz",
            b"\x1f\x8bjunkjunkjunk".to_vec(),
            "corrupt gzip stream",
        ),
        ("empty", vec![], "empty file"),
    ];
    for (name, bytes, want) in cases {
        std::fs::write(dir.join(name), bytes).unwrap();
        let err = read_idx(&dir.join(name)).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
    }
    let err = read_idx(&dir.join("missing")).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    std::fs::create_dir(dir.join("folder")).unwrap();
    let err = read_idx(&dir.join("folder")).unwrap_err().to_string();
    assert!(
        err.contains("folder") && err.contains("is a folder"),
        "{err}"
    );
}

fn tiny(n: usize, label: u8) -> Dataset {
    Dataset {
        images: vec![9; n * 4],
        labels: vec![label; n],
        channels: 1,
        rows: 2,
        cols: 2,
    }
}

#[test]
fn an_idx_folder_is_checked_for_consistency() {
    let dir = temp_dir("folder");
    write_dataset(&dir, &tiny(5, 3), &tiny(2, 1));
    let (train, test, hashes) = idx::load_dir(&dir, 10).unwrap();
    assert_eq!(
        (
            train.len(),
            test.len(),
            train.rows,
            train.cols,
            hashes.len()
        ),
        (5, 2, 2, 2, 4)
    );
    // A label beyond the classes: the labels file and the record are named.
    let err = idx::load_dir(&dir, 3).unwrap_err().to_string();
    assert!(
        err.contains("train-labels-idx1-ubyte.gz")
            && err.contains("record 0 is 3")
            && err.contains("3 classes"),
        "{err}"
    );
    // Image and label counts that disagree.
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        idx_bytes(&[3], &[0, 0, 0]),
    )
    .unwrap();
    let err = idx::load_dir(&dir, 10).unwrap_err().to_string();
    assert!(
        err.contains("2 images") && err.contains("3 labels"),
        "{err}"
    );
    // Wrong number of dimensions in the images file.
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx_bytes(&[8], &[0; 8])).unwrap();
    let err = idx::load_dir(&dir, 10).unwrap_err().to_string();
    assert!(
        err.contains("t10k-images-idx3-ubyte") && err.contains("expected 3 dimensions"),
        "{err}"
    );
    // A folder where a file should be.
    std::fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
    std::fs::create_dir(dir.join("t10k-images-idx3-ubyte")).unwrap();
    let err = idx::load_dir(&dir, 10).unwrap_err().to_string();
    assert!(err.contains("is a folder"), "{err}");
    // A missing file names what was looked for.
    std::fs::remove_file(dir.join("train-images-idx3-ubyte.gz")).unwrap();
    let err = idx::load_dir(&dir, 10).unwrap_err().to_string();
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains(".gz"),
        "{err}"
    );
    let err = idx::load_dir(&dir.join("nope"), 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn real_mnist_matches_its_published_facts() {
    let (train, test) = mnist();
    assert_eq!(
        (train.len(), test.len(), train.rows, train.cols),
        (60000, 10000, 28, 28)
    );
    assert_eq!(&train.labels[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&test.labels[..5], &[7, 2, 1, 0, 4]);
    let mut counts = [0usize; 10];
    for &l in &test.labels {
        counts[l as usize] += 1;
    }
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
}

/// Debian's dataset-fashion-mnist (installed by .ci/run): the right counts and checksums.
#[test]
fn fashion_mnist_from_debian_verifies() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.is_dir() {
        if std::env::var("GPU_CNN_REQUIRE_FASHION_MNIST").is_ok_and(|v| v == "1") {
            panic!(
                "{} is missing (apt-get install dataset-fashion-mnist)",
                dir.display()
            );
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED fashion_mnist_from_debian_verifies: {} is missing (apt-get install dataset-fashion-mnist)",
            dir.display()
        );
        return;
    }
    let (train, test) = data::probe(&FASHION_MNIST, dir).unwrap();
    assert_eq!((train.len(), test.len(), train.rows), (60000, 10000, 28));
    let mut counts = [0usize; 10];
    for &l in &test.labels {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [1000; 10]);
    // MNIST's checksums do not verify Fashion-MNIST.
    let err = data::probe(&MNIST, dir).unwrap_err();
    assert!(err.contains("checksum mismatch"), "{err}");
}

/// A small known dataset made up for the lookup and download tests: its files (as .gz bytes,
/// by standard name) and its registry entry with their checksums.
fn made_up(name: &'static str, mirrors: Vec<String>) -> (KnownDataset, Vec<(String, Vec<u8>)>) {
    let (train, test) = (tiny(6, 2), tiny(3, 1));
    let mut files = Vec::new();
    for (prefix, d) in [("train", &train), ("t10k", &test)] {
        let img = idx_bytes(&[d.len() as u32, 2, 2], &d.images);
        let lab = idx_bytes(&[d.len() as u32], &d.labels);
        files.push((format!("{prefix}-images-idx3-ubyte"), img));
        files.push((format!("{prefix}-labels-idx1-ubyte"), lab));
    }
    let known_files: Vec<KnownFile> = files
        .iter()
        .map(|(n, raw)| KnownFile {
            name: Box::leak(n.clone().into_boxed_str()),
            sha256: Box::leak(sha256_hex(raw).into_boxed_str()),
        })
        .collect();
    let mirrors: Vec<&'static str> = mirrors
        .into_iter()
        .map(|m| &*Box::leak(m.into_boxed_str()))
        .collect();
    let known = KnownDataset {
        name,
        classes: &["a", "b", "c"],
        shape: (1, 2, 2),
        train: 6,
        test: 3,
        format: Format::Idx,
        files: Box::leak(known_files.into_boxed_slice()),
        extracted: &[],
        mirrors: Box::leak(mirrors.into_boxed_slice()),
        source: "made up for tests",
    };
    let gz = files.into_iter().map(|(n, raw)| (n, gzip(&raw))).collect();
    (known, gz)
}

fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, gz) in files {
        std::fs::write(dir.join(format!("{name}.gz")), gz).unwrap();
    }
}

/// An environment whose every folder is under `root` and which never downloads.
fn env_under(root: &Path) -> Env {
    Env {
        data_root: Some(root.join("data")),
        cache_root: Some(root.join("cache")),
        system_root: Some(root.join("system")),
        assets_root: Some(root.join("assets")),
        offline: true,
        mirrors: None,
    }
}

#[test]
fn the_first_verified_copy_wins_in_the_stated_order() {
    let root = temp_dir("lookup");
    let env = env_under(&root);
    let (known, files) = made_up("tiny", vec!["http://127.0.0.1:9/".into()]);
    let dirs: Vec<(&str, PathBuf)> = vec![
        ("assets", root.join("assets/tiny")),
        ("system", root.join("system/tiny")),
        ("cache", root.join("cache/gpu-cnn/tiny")),
        ("$GPU_CNN_DATA", root.join("data/tiny")),
    ];
    let locs = data::locations("tiny", None, &env);
    let kinds: Vec<&str> = locs.iter().map(|l| l.kind).collect();
    assert_eq!(kinds, ["$GPU_CNN_DATA", "cache", "system", "assets"]);
    // Add copies from the last place to the first: each new one takes over.
    for (kind, dir) in &dirs {
        write_files(dir, &files);
        let d = data::load_known(&known, None, &env).unwrap();
        assert_eq!(
            (d.found.as_str(), &d.dir),
            (*kind, dir),
            "after adding {kind}"
        );
        assert!(d.verified);
        assert_eq!((d.train.len(), d.test.len()), (6, 3));
        assert_eq!(d.classes, ["a", "b", "c"]);
    }
    // A damaged copy is passed over, and said why when nothing else works.
    let bad = idx_bytes(&[6, 2, 2], &[0; 24]);
    std::fs::write(
        root.join("data/tiny/train-images-idx3-ubyte.gz"),
        gzip(&bad),
    )
    .unwrap();
    assert_eq!(data::load_known(&known, None, &env).unwrap().found, "cache");
    std::fs::remove_file(root.join("cache/gpu-cnn/tiny/t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(
        data::load_known(&known, None, &env).unwrap().found,
        "system"
    );
    std::fs::remove_dir_all(root.join("system")).unwrap();
    std::fs::remove_dir_all(root.join("assets")).unwrap();
    let err = data::load_known(&known, None, &env)
        .unwrap_err()
        .to_string();
    for want in [
        "tiny not found; looked in:",
        "data/tiny ($GPU_CNN_DATA): checksum mismatch",
        "cache/gpu-cnn/tiny (cache): incomplete: missing",
        "system/tiny (system): absent",
        "assets/tiny (assets): absent",
        "download: offline",
        "gpu-cnn datasets fetch tiny",
        "http://127.0.0.1:9/<file>.gz",
        "--data-dir",
    ] {
        assert!(err.contains(want), "lacks `{want}`:\n{err}");
    }
    // --data-dir wins over everything, and is read as given.
    let mine = root.join("mine");
    write_files(&mine, &files);
    let d = data::load_known(&known, Some(&mine), &env).unwrap();
    assert_eq!((d.found.as_str(), d.verified), ("--data-dir", true));
}

#[test]
fn data_dir_holding_another_dataset_is_refused_and_own_files_are_flagged() {
    // The real MNIST folder passed as Fashion-MNIST: identified by its checksums.
    let env = env_under(&temp_dir("contradiction"));
    let err = data::load_known(&FASHION_MNIST, Some(&mnist_dir()), &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds mnist, not fashion-mnist") && err.contains("--dataset mnist"),
        "{err}"
    );
    // Files of your own under MNIST's names train, unverified.
    let dir = temp_dir("own-idx");
    write_dataset(&dir, &tiny(5, 3), &tiny(2, 1));
    let d = data::load_known(&MNIST, Some(&dir), &env).unwrap();
    assert!(!d.verified);
    assert!(
        d.describe().contains("not the published files"),
        "{}",
        d.describe()
    );
    // ... but their labels must fit the dataset's classes, and the labels file is named.
    write_dataset(&dir, &tiny(5, 12), &tiny(2, 1));
    let err = data::load_known(&MNIST, Some(&dir), &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train-labels-idx1-ubyte") && err.contains("record 0 is 12"),
        "{err}"
    );
}

fn routes(prefix: &str, files: &[(String, Vec<u8>)]) -> HashMap<String, Reply> {
    files
        .iter()
        .map(|(n, gz)| (format!("{prefix}/{n}.gz"), Reply::Ok(gz.clone())))
        .collect()
}

fn cached_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn downloads_verify_and_fall_back_to_the_next_mirror() {
    let (_, files) = made_up("tiny", vec![]);
    // /good serves everything; /bad serves wrong content, errors, or cuts the connection.
    let mut r = routes("/good", &files);
    let corrupt = gzip(&idx_bytes(&[6, 2, 2], &[1; 24]));
    r.insert(
        "/bad/train-images-idx3-ubyte.gz".into(),
        Reply::Ok(corrupt.clone()),
    );
    r.insert("/bad/train-labels-idx1-ubyte.gz".into(), Reply::Status(500));
    r.insert(
        "/bad/t10k-images-idx3-ubyte.gz".into(),
        Reply::Cut(files[2].1.clone(), 10),
    );
    // t10k-labels is a 404 on /bad.
    let server = Server::start(r);
    let good = format!("{}/good/", server.base);
    let bad = format!("{}/bad", server.base);
    let root = temp_dir("download");
    let (known, _) = made_up("tiny", vec![bad.clone(), good.clone()]);
    let cache = root.join("cache");
    let got = fetch::fetch_dataset(&known, &cache, &[bad.clone(), good.clone()], false).unwrap();
    assert_eq!(got.len(), 4);
    for f in &got {
        match f {
            fetch::Fetched::Downloaded { url, .. } => assert!(url.starts_with(&good), "{url}"),
            other => panic!("{other:?}"),
        }
    }
    // Each file was asked of the bad mirror first, then the good one.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 8, "{reqs:?}");
    assert!(
        reqs[0].starts_with("/bad/") && reqs[1].starts_with("/good/"),
        "{reqs:?}"
    );
    // The cache holds exactly the four verified files: no temporary files.
    let names = cached_names(&cache);
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(data::probe(&known, &cache).is_ok());
    // A second fetch finds them cached; --force downloads again.
    let again = fetch::fetch_dataset(&known, &cache, &[good.clone()], false).unwrap();
    assert!(again.iter().all(|f| matches!(f, fetch::Fetched::Cached(_))));
    let forced = fetch::fetch_dataset(&known, &cache, &[good.clone()], true).unwrap();
    assert!(forced
        .iter()
        .all(|f| matches!(f, fetch::Fetched::Downloaded { .. })));
    // A cached file that fails verification is fetched again.
    std::fs::write(cache.join("train-images-idx3-ubyte.gz"), &corrupt).unwrap();
    let healed = fetch::fetch_dataset(&known, &cache, &[good.clone()], false).unwrap();
    assert!(matches!(healed[0], fetch::Fetched::Downloaded { .. }));
    assert!(data::probe(&known, &cache).is_ok());
}

#[test]
fn a_failed_download_leaves_nothing_and_names_every_url() {
    let (_, files) = made_up("tiny", vec![]);
    let mut r = HashMap::new();
    r.insert(
        "/a/train-images-idx3-ubyte.gz".to_string(),
        Reply::Cut(files[0].1.clone(), 7),
    );
    r.insert(
        "/b/train-images-idx3-ubyte.gz".to_string(),
        Reply::Status(404),
    );
    let server = Server::start(r);
    let mirrors = vec![format!("{}/a", server.base), format!("{}/b", server.base)];
    let (known, _) = made_up("tiny", mirrors.clone());
    let cache = temp_dir("download-fail").join("cache");
    let err = fetch::fetch_dataset(&known, &cache, &mirrors, false)
        .unwrap_err()
        .to_string();
    for want in [
        "could not download train-images-idx3-ubyte.gz from any mirror",
        &format!("{}/a/train-images-idx3-ubyte.gz", server.base),
        &format!("{}/b/train-images-idx3-ubyte.gz: HTTP 404", server.base),
    ] {
        assert!(err.contains(want), "lacks `{want}`:\n{err}");
    }
    assert!(
        err.contains("closed after 7") || err.contains("connection"),
        "{err}"
    );
    assert_eq!(
        cached_names(&cache),
        Vec::<String>::new(),
        "no partial file"
    );

    // Through load_known: a download when nothing is on the machine, unless offline.
    let root = temp_dir("download-load");
    let mut env = env_under(&root);
    let served = Server::start(routes("/m", &files));
    env.mirrors = Some(format!("{}/m", served.base));
    let err = data::load_known(&known, None, &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("download: offline"), "{err}");
    assert!(served.requests().is_empty(), "offline must not download");
    env.offline = false;
    let d = data::load_known(&known, None, &env).unwrap();
    assert_eq!((d.found.as_str(), d.verified), ("download", true));
    assert_eq!(d.dir, root.join("cache/gpu-cnn/tiny"));
}

#[test]
fn image_folders_load_with_sorted_classes_in_either_colour() {
    let dir = temp_dir("images");
    image_folder(&dir);
    let opts = FolderOptions {
        size: (12, 10),
        ..Default::default()
    };
    let (train, test, classes) = folder::load(&dir, &opts).unwrap();
    assert_eq!(classes, ["circle", "cross", "empty"]);
    assert_eq!((train.len(), test.len()), (12, 6));
    assert_eq!((train.channels, train.rows, train.cols), (1, 12, 10));
    assert_eq!(train.labels, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    assert_eq!(train.images.len(), 12 * 120);
    let rgb = FolderOptions {
        color: Color::Rgb,
        ..opts.clone()
    };
    let (train_rgb, _, _) = folder::load(&dir, &rgb).unwrap();
    assert_eq!(train_rgb.channels, 3);
    assert_eq!(train_rgb.images.len(), 12 * 3 * 120);
    // Grey pictures have equal channels; the first plane of the PNG equals its grey version.
    assert_eq!(&train_rgb.image(0)[..120], &train_rgb.image(0)[120..240]);
    assert_eq!(&train_rgb.image(0)[..120], train.image(0));
    // The same size as the file: no resampling, the exact pixels.
    let exact =
        folder::decode_image(&dir.join("train/circle/0.png"), Color::Grayscale, (20, 20)).unwrap();
    assert_eq!(exact[1], 31);
    assert_eq!(exact[20], 17);

    // Without test/: a seeded validation split, the same every time.
    std::fs::remove_dir_all(dir.join("test")).unwrap();
    let err = folder::load(&dir, &opts).unwrap_err().to_string();
    assert!(err.contains("--validation-split"), "{err}");
    let split = FolderOptions {
        validation_split: Some(0.25),
        ..opts.clone()
    };
    let (t1, v1, _) = folder::load(&dir, &split).unwrap();
    let (t2, v2, _) = folder::load(&dir, &split).unwrap();
    assert_eq!((t1.len(), v1.len()), (9, 3));
    assert_eq!((&t1, &v1), (&t2, &v2));
}

#[test]
fn broken_image_folders_are_clear_errors() {
    let dir = temp_dir("bad-images");
    image_folder(&dir);
    let opts = FolderOptions::default();
    // A file that is not an image stops the run with its path...
    std::fs::write(dir.join("train/cross/notes.txt"), b"not a picture").unwrap();
    let err = folder::load(&dir, &opts).unwrap_err().to_string();
    assert!(
        err.contains("train/cross/notes.txt") && err.contains("not an image"),
        "{err}"
    );
    // ... as does a truncated PNG, and a zero-byte file.
    std::fs::remove_file(dir.join("train/cross/notes.txt")).unwrap();
    let png = std::fs::read(dir.join("train/cross/0.png")).unwrap();
    std::fs::write(dir.join("train/cross/cut.png"), &png[..png.len() / 2]).unwrap();
    let err = folder::load(&dir, &opts).unwrap_err().to_string();
    assert!(err.contains("train/cross/cut.png"), "{err}");
    std::fs::write(dir.join("train/empty/zero.png"), b"").unwrap();
    // ... unless skipped: then they are listed and the rest loads.
    let skip = FolderOptions {
        skip_bad_images: true,
        ..opts.clone()
    };
    let (train, _, _) = folder::load(&dir, &skip).unwrap();
    assert_eq!(train.len(), 12);
    // An empty class folder, a test class the training set lacks, no classes at all.
    std::fs::create_dir(dir.join("train/zzz")).unwrap();
    let err = folder::load(&dir, &skip).unwrap_err().to_string();
    assert!(
        err.contains("train/zzz") && err.contains("holds no files"),
        "{err}"
    );
    std::fs::remove_dir(dir.join("train/zzz")).unwrap();
    std::fs::create_dir_all(dir.join("test/dog")).unwrap();
    let err = folder::load(&dir, &skip).unwrap_err().to_string();
    assert!(
        err.contains("class `dog` is not among the training classes"),
        "{err}"
    );
    let empty = temp_dir("no-classes");
    std::fs::create_dir(empty.join("train")).unwrap();
    let err = folder::load(&empty, &opts).unwrap_err().to_string();
    assert!(err.contains("has no class folders"), "{err}");
    let err = folder::load(&empty.join("nowhere"), &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nowhere/train is not a folder"), "{err}");
}

#[test]
fn a_huge_image_is_refused_without_decoding_it() {
    // A valid PNG header claiming 50,000 x 50,000 pixels: refused from its header.
    let dir = temp_dir("huge-image");
    let path = dir.join("huge.png");
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&crc.sum().to_be_bytes());
        c
    };
    let mut ihdr = 50_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&50_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut buf = b"\x89PNG\r\n\x1a\n".to_vec();
    buf.extend(chunk(b"IHDR", &ihdr));
    buf.extend(chunk(b"IDAT", &[]));
    buf.extend(chunk(b"IEND", &[]));
    std::fs::write(&path, &buf).unwrap();
    let err = folder::decode_image(&path, Color::Grayscale, (28, 28))
        .unwrap_err()
        .to_string();
    assert!(err.contains("huge.png"), "{err}");
}

#[test]
fn image_sizes_parse() {
    assert_eq!(folder::parse_size("28x28"), Ok((28, 28)));
    assert_eq!(folder::parse_size("32X24"), Ok((32, 24)));
    assert_eq!(folder::parse_size("64"), Ok((64, 64)));
    for bad in ["0x28", "28x", "axb", "5000x5000", ""] {
        assert!(folder::parse_size(bad).is_err(), "{bad}");
    }
}

// CIFAR-10 ---------------------------------------------------------------------------------

/// Record `i` of a made-up batch: label `(i + salt) % 10`, pixel bytes counting from it.
fn cifar_record(i: usize, salt: usize) -> Vec<u8> {
    let label = ((i + salt) % 10) as u8;
    let mut r = vec![label];
    r.extend((0..3072).map(|p| ((p + 3 * i + salt) % 251) as u8));
    r
}

/// The standard members with `n` records per training batch and `n` test records.
fn cifar_members(n: usize) -> Vec<(String, Vec<u8>)> {
    let mut m = Vec::new();
    for b in 0..5 {
        let batch: Vec<u8> = (0..n).flat_map(|i| cifar_record(i, b)).collect();
        m.push((cifar::TRAIN_MEMBERS[b].to_string(), batch));
    }
    m.push((
        cifar::TEST_MEMBER.to_string(),
        (0..n).flat_map(|i| cifar_record(i, 7)).collect(),
    ));
    m.push((
        cifar::META_MEMBER.to_string(),
        b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n".to_vec(),
    ));
    m
}

fn load_cifar(dir: &Path) -> Result<cifar::Cifar, String> {
    cifar::load_dir(dir, 10).map_err(|e| e.to_string())
}

#[test]
fn a_cifar_archive_reads_into_channel_major_images() {
    let dir = temp_dir("cifar-read");
    std::fs::write(dir.join(cifar::ARCHIVE), cifar_archive(&cifar_members(3))).unwrap();
    let c = load_cifar(&dir).unwrap();
    assert_eq!((c.train.len(), c.test.len()), (15, 3));
    assert_eq!((c.train.channels, c.train.rows, c.train.cols), (3, 32, 32));
    // Batch order, then record order: the 5th training image is batch 2's second record.
    assert_eq!(c.train.labels[..6], [0, 1, 2, 1, 2, 3]);
    assert_eq!(c.train.image(4), &cifar_record(1, 1)[1..]);
    assert_eq!(c.test.image(2), &cifar_record(2, 7)[1..]);
    assert_eq!(c.classes.as_ref().unwrap()[9], "truck");
    let bytes = std::fs::read(dir.join(cifar::ARCHIVE)).unwrap();
    assert_eq!(
        c.sha256,
        vec![(dir.join(cifar::ARCHIVE), sha256_hex(&bytes))]
    );
    // Not the published archive: the lookup refuses it, naming the checksum.
    let err = data::probe(&CIFAR10, &dir).unwrap_err();
    assert!(
        err.contains("checksum mismatch") && err.contains(CIFAR10.files[0].sha256),
        "{err}"
    );

    // The extracted files, in cifar-10-batches-bin/ or directly, read the same; each batch is
    // checked against the published batches' checksums.
    let ex = temp_dir("cifar-extracted");
    let inner = ex.join(cifar::FOLDER);
    std::fs::create_dir_all(&inner).unwrap();
    for (name, bytes) in cifar_members(3) {
        std::fs::write(inner.join(name), bytes).unwrap();
    }
    let e = load_cifar(&ex).unwrap();
    assert_eq!(
        (
            e.train.images == c.train.images,
            e.test.labels == c.test.labels
        ),
        (true, true)
    );
    assert_eq!(e.sha256.len(), 6);
    assert_eq!(e.sha256[5].0, inner.join("test_batch.bin"));
    let err = data::probe(&CIFAR10, &ex).unwrap_err();
    assert!(
        err.contains("checksum mismatch") && err.contains(CIFAR10.extracted[0].sha256),
        "{err}"
    );
    // With the batches' checksums in the registry, the same files verify.
    let sums: Vec<String> = e.sha256.iter().map(|(_, h)| h.clone()).collect();
    let extracted: Vec<KnownFile> = cifar::TRAIN_MEMBERS
        .iter()
        .chain([&cifar::TEST_MEMBER])
        .zip(&sums)
        .map(|(n, h)| KnownFile {
            name: n,
            sha256: Box::leak(h.clone().into_boxed_str()),
        })
        .collect();
    let known = KnownDataset {
        extracted: Box::leak(extracted.into_boxed_slice()),
        ..CIFAR10
    };
    assert!(data::probe(&known, &ex).is_ok());
    let e = load_cifar(&inner).unwrap();
    assert_eq!(e.train.len(), 15);
}

#[test]
fn broken_cifar_archives_are_clear_errors() {
    let good = cifar_archive(&cifar_members(2));
    let mut missing = cifar_members(2);
    missing.retain(|(n, _)| n != "data_batch_3.bin" && n != cifar::TEST_MEMBER);
    let mut ragged = cifar_members(2);
    ragged[1].1.pop();
    let mut label = cifar_members(2);
    label[5].1[3073] = 10;
    let tar_only = {
        let gz = good.clone();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        raw
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty file", vec![], "is empty, not a CIFAR-10 archive"),
        ("not gzip", b"<html>503</html>".to_vec(), "archive"),
        ("plain tar", tar_only, "archive"),
        ("truncated", good[..good.len() / 2].to_vec(), "truncated"),
        (
            "missing members",
            cifar_archive(&missing),
            "missing data_batch_3.bin, test_batch.bin",
        ),
        (
            "ragged batch",
            cifar_archive(&ragged),
            "member data_batch_2.bin is 6145 bytes, not a whole number of 3073-byte records",
        ),
        (
            "label 10",
            cifar_archive(&label),
            "member test_batch.bin: label of record 1 is 10, outside 0..10",
        ),
        ("no members", cifar_archive(&[]), "missing data_batch_1.bin"),
    ];
    for (what, bytes, want) in cases {
        let dir = temp_dir("cifar-bad");
        let path = dir.join(cifar::ARCHIVE);
        std::fs::write(&path, bytes).unwrap();
        let err = load_cifar(&dir).unwrap_err();
        assert!(err.contains(want), "{what}: {err}");
        assert!(
            err.contains(&path.display().to_string()),
            "{what} names the file: {err}"
        );
    }
    // A folder with neither the archive nor the extracted files says what it looked for.
    let dir = temp_dir("cifar-none");
    let err = load_cifar(&dir).unwrap_err();
    assert!(err.contains("missing cifar-10-binary.tar.gz"), "{err}");
    assert_eq!(
        data::probe(&CIFAR10, &dir).unwrap_err().split(':').next(),
        Some("incomplete")
    );
}

#[test]
fn cifar10_downloads_the_archive_from_the_next_mirror_and_checks_it() {
    let archive = cifar_archive(&cifar_members(1));
    let mut r = HashMap::new();
    r.insert(
        format!("/a/{}", cifar::ARCHIVE),
        Reply::Cut(archive.clone(), 100),
    );
    r.insert(format!("/b/{}", cifar::ARCHIVE), Reply::Ok(archive.clone()));
    let server = Server::start(r);
    let mirrors = vec![format!("{}/a", server.base), format!("{}/b/", server.base)];
    let root = temp_dir("cifar-fetch");
    // The real registry entry: the made-up archive is served whole by /b but is not the
    // published one, so it is refused by checksum and nothing is left in the cache.
    let err = fetch::fetch_dataset(&CIFAR10, &root.join("c"), &mirrors, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("could not download cifar-10-binary.tar.gz"),
        "{err}"
    );
    assert!(
        err.contains("/a/cifar-10-binary.tar.gz: connection"),
        "{err}"
    );
    assert!(
        err.contains(&format!("SHA-256 is {}", sha256_hex(&archive))),
        "{err}"
    );
    assert!(cached_names(&root.join("c")).is_empty());
    // An entry whose checksum is this archive's: fetched from /b, then found by the lookup.
    let known = KnownDataset {
        name: "cifar10",
        files: Box::leak(
            vec![KnownFile {
                name: cifar::ARCHIVE,
                sha256: Box::leak(sha256_hex(&archive).into_boxed_str()),
            }]
            .into_boxed_slice(),
        ),
        ..CIFAR10
    };
    let got = fetch::fetch_dataset(&known, &root.join("c"), &mirrors, false).unwrap();
    assert!(
        matches!(&got[0], fetch::Fetched::Downloaded { url, .. } if url.ends_with("/b/cifar-10-binary.tar.gz")),
        "{got:?}"
    );
    assert_eq!(
        cached_names(&root.join("c")),
        vec![cifar::ARCHIVE.to_string()]
    );
    let (train, test) = data::probe(&known, &root.join("c")).unwrap();
    assert_eq!((train.len(), test.len(), train.pixels()), (5, 1, 3072));
}
