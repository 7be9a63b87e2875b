//! The portal's files, inside the binary: its style sheet, its font (Vazirmatn, SIL
//! Open Font License, `server/assets/fonts/OFL.txt`) and its emblem. Nothing is
//! fetched from any other host, so pages look the same on an intranet without
//! internet. Each file's URL carries a hash of its content, so browsers keep it for
//! a year and still see a new version at once.

use std::sync::OnceLock;

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

pub const ASSETS: &[Asset] = &[
    Asset {
        name: "portal.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/portal/portal.css"),
    },
    Asset {
        name: "emblem.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/portal/emblem.svg"),
    },
    Asset {
        name: "vazirmatn-regular.woff2",
        content_type: "font/woff2",
        bytes: include_bytes!("../../assets/fonts/Vazirmatn-Regular.woff2"),
    },
    Asset {
        name: "vazirmatn-bold.woff2",
        content_type: "font/woff2",
        bytes: include_bytes!("../../assets/fonts/Vazirmatn-Bold.woff2"),
    },
];

/// The asset called `name`.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The URL of asset `name`, with its content's hash.
pub fn url(name: &str) -> String {
    static VERSIONS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let versions = VERSIONS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = ring::digest::digest(&ring::digest::SHA256, a.bytes);
                let hex: String = digest.as_ref()[..6]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                (a.name, hex)
            })
            .collect()
    });
    match versions.iter().find(|(n, _)| *n == name) {
        Some((_, v)) => format!("/assets/{name}?v={v}"),
        None => format!("/assets/{name}"),
    }
}
