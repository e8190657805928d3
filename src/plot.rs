//! Pictures of a run: `history.png` (the tutorial's accuracy and loss curves, drawn with plotters
//! and the DejaVu Sans font embedded from `assets/fonts`, so no system font or display is
//! needed) and the small text chart printed at the end of `train`.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::history::EpochRecord;

/// The embedded font, registered with plotters once.
fn font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../assets/fonts/DejaVuSans.ttf"),
        )
        .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Gpu("the embedded font does not load".into()))
    }
}

/// Width and height of `history.png`.
pub const HISTORY_SIZE: (u32, u32) = (1200, 500);

/// Draws accuracy / val_accuracy and loss / val_loss per epoch, side by side, titled `title`,
/// and writes the PNG atomically.
pub fn history_png(epochs: &[EpochRecord], title: &str, path: &Path) -> Result<()> {
    font()?;
    let (w, h) = HISTORY_SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    let err = |e: String| Error::bad_file(path, format!("drawing the plot: {e}"));
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| err(e.to_string()))?;
        let panels = root.split_evenly((1, 2));
        let acc: Vec<(f64, f64, f64)> = epochs
            .iter()
            .map(|e| (e.epoch as f64, e.accuracy, e.val_accuracy))
            .collect();
        let loss: Vec<(f64, f64, f64)> = epochs
            .iter()
            .map(|e| (e.epoch as f64, e.loss, e.val_loss))
            .collect();
        panel(
            &panels[0],
            "Accuracy",
            "accuracy",
            &acc,
            SeriesLabelPosition::LowerRight,
        )
        .map_err(err)?;
        panel(
            &panels[1],
            "Loss",
            "loss",
            &loss,
            SeriesLabelPosition::UpperRight,
        )
        .map_err(err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    let img = image::RgbImage::from_raw(w, h, rgb)
        .ok_or_else(|| Error::bad_file(path, "plot buffer has the wrong size"))?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::bad_file(path, format!("encoding the PNG: {e}")))?;
    write_atomic(path, &png)
}

/// One panel: `name` and `val_<name>` against the epoch.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    name: &str,
    points: &[(f64, f64, f64)],
    legend: SeriesLabelPosition,
) -> std::result::Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let finite: Vec<f64> = points
        .iter()
        .flat_map(|p| [p.1, p.2])
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let last = points.len().max(2) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(1.0..last, (lo - pad)..(hi + pad))
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(name)
        .x_labels(points.len().clamp(2, 12))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(|x| e(&x))?;
    let blue = RGBColor(31, 119, 180);
    let orange = RGBColor(255, 127, 14);
    for (label, color, pick) in [
        (name.to_string(), blue, 0),
        (format!("val_{name}"), orange, 1),
    ] {
        let series: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.0, if pick == 0 { p.1 } else { p.2 }))
            .filter(|p| p.1.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(series.clone(), color.stroke_width(3)))
            .map_err(|x| e(&x))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
        chart
            .draw_series(series.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|x| e(&x))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(legend)
        .draw()
        .map_err(|x| e(&x))?;
    Ok(())
}

/// A bar chart in Unicode blocks of accuracy (left bar of each epoch) and val_accuracy (right
/// bar), `rows` rows high, eighth-of-a-row resolution, the range on the left: for a terminal on a
/// remote shell.
pub fn text_chart(epochs: &[EpochRecord], rows: usize) -> String {
    const BLOCKS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values: Vec<f64> = epochs
        .iter()
        .flat_map(|e| [e.accuracy, e.val_accuracy])
        .filter(|v| v.is_finite())
        .collect();
    if values.is_empty() || rows == 0 {
        return String::new();
    }
    let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    // The lowest bar keeps a tenth of the height, so every bar shows.
    let lo = (min - (hi - min).max(1e-3) * 0.1).max(0.0);
    let span = (hi - lo).max(1e-9);
    let eighths = |v: f64| -> usize {
        if v.is_finite() {
            (((v - lo) / span) * (rows * 8) as f64).round().max(1.0) as usize
        } else {
            0
        }
    };
    let cell = |h: usize, r: usize| BLOCKS[h.saturating_sub(r * 8).min(8)];
    let mut out = String::from("accuracy (left bars) and val_accuracy (right bars) per epoch\n");
    for r in (0..rows).rev() {
        if r == rows - 1 {
            out.push_str(&format!("{hi:>7.4} ┤"));
        } else if r == 0 {
            out.push_str(&format!("{lo:>7.4} ┤"));
        } else {
            out.push_str("        │");
        }
        for e in epochs {
            out.push(cell(eighths(e.accuracy), r));
            out.push(cell(eighths(e.val_accuracy), r));
            out.push(' ');
        }
        out.push('\n');
    }
    out.push_str("        └");
    out.push_str(&"─".repeat(3 * epochs.len()));
    out.push_str("\n         ");
    for e in epochs {
        out.push_str(&format!("{:<3}", e.epoch % 100));
    }
    out.push_str("epoch\n");
    out
}

/// A grid of images from `d` (by index), each scaled up and captioned, titled; written as PNG.
pub fn image_grid(
    d: &crate::data::Dataset,
    cells: &[(usize, String)],
    title: &str,
    path: &Path,
) -> Result<()> {
    font()?;
    let cols = cells.len().clamp(1, 5);
    let rows = cells.len().div_ceil(cols).max(1);
    // Each picture at least 112 pixels on its longer side, nearest-neighbour.
    let scale = (112 / d.rows.max(d.cols)).max(1) as u32;
    let (pw, ph) = (d.cols as u32 * scale, d.rows as u32 * scale);
    let (cw, ch) = ((pw + 24).max(190), ph + 44);
    let (w, h) = (cw * cols as u32 + 20, ch * rows as u32 + 60);
    let mut img = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    let plane = d.rows * d.cols;
    for (k, (i, _)) in cells.iter().enumerate() {
        let px = d.image(*i);
        let (x0, y0) = (
            10 + (k % cols) as u32 * cw + (cw - pw) / 2,
            50 + (k / cols) as u32 * ch,
        );
        for y in 0..ph {
            for x in 0..pw {
                let at = (y / scale) as usize * d.cols + (x / scale) as usize;
                let rgb = if d.channels == 3 {
                    [px[at], px[plane + at], px[2 * plane + at]]
                } else {
                    [px[at]; 3]
                };
                img.put_pixel(x0 + x, y0 + y, image::Rgb(rgb));
            }
        }
    }
    let err = |e: String| Error::bad_file(path, format!("drawing the grid: {e}"));
    {
        let root = BitMapBackend::with_buffer(img.as_mut(), (w, h)).into_drawing_area();
        root.draw_text(
            title,
            &("sans-serif", 20).into_font().color(&BLACK),
            (10, 14),
        )
        .map_err(|e| err(e.to_string()))?;
        let style = ("sans-serif", 15).into_font().color(&BLACK);
        for (k, (_, caption)) in cells.iter().enumerate() {
            let x = 10 + (k % cols) as u32 * cw + 6;
            let y = 50 + (k / cols) as u32 * ch + ph + 8;
            root.draw_text(caption, &style, (x as i32, y as i32))
                .map_err(|e| err(e.to_string()))?;
        }
        if cells.is_empty() {
            root.draw_text(
                "(none: every image is classified correctly)",
                &style,
                (10, 60),
            )
            .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::bad_file(path, format!("encoding the PNG: {e}")))?;
    write_atomic(path, &png)
}
