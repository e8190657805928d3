//! The datasets gpu-cnn knows by name: shapes, class names, the SHA-256 of each file and the
//! public mirrors that serve them.

/// One file of a known dataset: its standard name and SHA-256. For IDX datasets the name is
/// without `.gz` and the checksum is of the uncompressed content (a copy may be stored either way);
/// for an archive it is the file as published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownFile {
    pub name: &'static str,
    pub sha256: &'static str,
}

/// How a known dataset is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Four IDX files (training images and labels, test images and labels), served as `.gz`.
    Idx,
    /// CIFAR-10's binary version: one `.tar.gz` archive (`data::cifar`).
    CifarBinary,
}

/// A dataset known by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownDataset {
    pub name: &'static str,
    pub classes: &'static [&'static str],
    /// (channels, rows, cols) of one image.
    pub shape: (usize, usize, usize),
    pub train: usize,
    pub test: usize,
    pub format: Format,
    /// IDX: training images, training labels, test images, test labels. CIFAR: the archive.
    pub files: &'static [KnownFile],
    /// CIFAR: the archive's members once extracted (training batches, then the test batch), so
    /// that an extracted copy verifies too. Empty for IDX datasets.
    pub extracted: &'static [KnownFile],
    /// Base URLs, tried in order; each serves every file under `served_name`.
    pub mirrors: &'static [&'static str],
    /// Where it comes from and under which licence.
    pub source: &'static str,
}

pub const MNIST: KnownDataset = KnownDataset {
    name: "mnist",
    classes: &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    shape: (1, 28, 28),
    train: 60_000,
    test: 10_000,
    format: Format::Idx,
    extracted: &[],
    files: &[
        KnownFile {
            name: "train-images-idx3-ubyte",
            sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        },
        KnownFile {
            name: "train-labels-idx1-ubyte",
            sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        },
        KnownFile {
            name: "t10k-images-idx3-ubyte",
            sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        },
        KnownFile {
            name: "t10k-labels-idx1-ubyte",
            sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ],
    mirrors: &[
        // The mirrors PyTorch's and TensorFlow's loaders use.
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    source: "LeCun, Cortes, Burges; CC BY-SA 3.0",
};

pub const FASHION_MNIST: KnownDataset = KnownDataset {
    name: "fashion-mnist",
    classes: &[
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    shape: (1, 28, 28),
    train: 60_000,
    test: 10_000,
    // Computed from Debian's dataset-fashion-mnist package.
    format: Format::Idx,
    extracted: &[],
    files: &[
        KnownFile {
            name: "train-images-idx3-ubyte",
            sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        },
        KnownFile {
            name: "train-labels-idx1-ubyte",
            sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        },
        KnownFile {
            name: "t10k-images-idx3-ubyte",
            sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        },
        KnownFile {
            name: "t10k-labels-idx1-ubyte",
            sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    ],
    mirrors: &[
        // Zalando Research's own site, then the copy Keras' loader uses.
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ],
    source: "Zalando Research (Xiao, Rasul, Vollgraf); MIT licence",
};

pub const CIFAR10: KnownDataset = KnownDataset {
    name: "cifar10",
    classes: &[
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ],
    shape: (3, 32, 32),
    train: 50_000,
    test: 10_000,
    format: Format::CifarBinary,
    // The published archive: 170,052,171 bytes.
    files: &[KnownFile {
        name: "cifar-10-binary.tar.gz",
        sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    }],
    extracted: &[
        KnownFile {
            name: "data_batch_1.bin",
            sha256: "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
        },
        KnownFile {
            name: "data_batch_2.bin",
            sha256: "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
        },
        KnownFile {
            name: "data_batch_3.bin",
            sha256: "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
        },
        KnownFile {
            name: "data_batch_4.bin",
            sha256: "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
        },
        KnownFile {
            name: "data_batch_5.bin",
            sha256: "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
        },
        KnownFile {
            name: "test_batch.bin",
            sha256: "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
        },
    ],
    mirrors: &[
        // Alex Krizhevsky's page at the University of Toronto, then the copy Swift for
        // TensorFlow's loader used.
        "https://www.cs.toronto.edu/~kriz/",
        "https://storage.googleapis.com/s4tf-hosted-binaries/datasets/CIFAR10/",
    ],
    source: "Krizhevsky, Nair, Hinton (University of Toronto), 2009",
};

impl KnownDataset {
    /// The name a mirror serves `file` under: `<name>.gz` for IDX files, the archive's own name.
    pub fn served_name(&self, file: &KnownFile) -> String {
        match self.format {
            Format::Idx => format!("{}.gz", file.name),
            Format::CifarBinary => file.name.to_string(),
        }
    }
}

/// Every dataset known by name.
pub const KNOWN: [KnownDataset; 3] = [MNIST, FASHION_MNIST, CIFAR10];

/// The known dataset called `name`.
pub fn known(name: &str) -> Option<&'static KnownDataset> {
    KNOWN.iter().find(|d| d.name == name)
}

/// The known dataset whose files have exactly these SHA-256 values, in the order of `files`
/// (as each dataset's format computes them) or of `extracted`.
pub fn identify(sha256: &[String]) -> Option<&'static KnownDataset> {
    KNOWN.iter().find(|d| d.matches(sha256))
}

impl KnownDataset {
    /// Whether these SHA-256 values are exactly those of `files`, or of `extracted`.
    pub fn matches(&self, sha256: &[String]) -> bool {
        let same = |files: &[KnownFile]| {
            !files.is_empty()
                && files
                    .iter()
                    .map(|f| f.sha256)
                    .eq(sha256.iter().map(|s| s.as_str()))
        };
        same(self.files) || same(self.extracted)
    }
}
