"""Makes the sample pictures in assets/digits/ from MNIST test images, as a user would take
them: dark ink on light paper, off-centre on a larger canvas, larger than 28x28, some JPEG, some
RGB. Each file is named <label>-<index of the MNIST test image>.<ext>.

Not needed to build, run or test gpu-cnn; kept so the pictures can be made again:
    pip install pillow numpy
    python3 assets/digits/make_digits.py        (from the repository root)
"""
import gzip
import random

import numpy as np
from PIL import Image, ImageFilter

MNIST = "assets/mnist/"
OUT = "assets/digits/"

with gzip.open(MNIST + "t10k-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28)
with gzip.open(MNIST + "t10k-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read()[8:], np.uint8)

# The first test image of each digit, then the second 7 and the second 4: twelve pictures.
picks = [int(np.argmax(labels == d)) for d in range(10)]
picks += [int(np.nonzero(labels == 7)[0][1]), int(np.nonzero(labels == 4)[0][1])]

rng = random.Random(7)
for n, i in enumerate(picks):
    digit = Image.fromarray(images[i])
    scale = rng.choice([4, 5, 6, 8])
    digit = digit.resize((28 * scale, 28 * scale), Image.BICUBIC)
    digit = digit.rotate(rng.uniform(-8, 8), resample=Image.BICUBIC)
    w, h = digit.size[0] + rng.randint(60, 200), digit.size[1] + rng.randint(40, 160)
    x, y = rng.randint(0, w - digit.size[0]), rng.randint(0, h - digit.size[1])
    ink = np.zeros((h, w), np.float32)
    ink[y:y + digit.size[1], x:x + digit.size[0]] = np.asarray(digit, np.float32) / 255.0
    # Paper: light, with a gentle shading gradient and grain.
    shade = np.linspace(0, rng.uniform(10, 35), w)[None, :] + np.linspace(0, rng.uniform(0, 20), h)[:, None]
    grain = np.asarray([[rng.gauss(0, 4) for _ in range(w)] for _ in range(h)], np.float32)
    paper = 245 - shade + grain
    rgb = n % 3 == 1
    if rgb:
        pen = np.array([30, 40, 120], np.float32)      # blue ink
        cream = np.array([1.0, 0.97, 0.88], np.float32)
        px = paper[..., None] * cream * (1 - ink[..., None]) + pen * ink[..., None]
        img = Image.fromarray(np.clip(px, 0, 255).astype(np.uint8), "RGB")
    else:
        px = paper * (1 - ink) + 25 * ink
        img = Image.fromarray(np.clip(px, 0, 255).astype(np.uint8), "L")
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    name = f"{OUT}{labels[i]}-{i}"
    if n % 2 == 0:
        img.save(name + ".jpg", quality=85)
    else:
        img.save(name + ".png", optimize=True)
    print(name, img.size, img.mode)
