//! Feeds arbitrary bytes, split at an arbitrary point, to the STOMP frame
//! decoder: it must never panic, and a decoded frame must re-encode and decode
//! to itself.

#![no_main]

use hookbus::stomp::decode::Decoder;
use hookbus::stomp::frame::Escaping;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(bytes.len());
    let mut decoder = Decoder::new(Escaping::V12);
    decoder.push(&bytes[..split]);
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = decoder.next_frame() {
        frames.push(frame);
    }
    decoder.push(&bytes[split..]);
    while let Ok(Some(frame)) = decoder.next_frame() {
        frames.push(frame);
    }
    for frame in frames {
        if frame.command.is_empty() || frame.command.contains(['\n', '\r', '\0']) {
            continue;
        }
        let mut wire = Vec::new();
        frame.encode(Escaping::V12, &mut wire);
        let mut again = Decoder::new(Escaping::V12);
        again.push(&wire);
        let back = again
            .next_frame()
            .expect("re-encoded frame decodes")
            .expect("re-encoded frame is complete");
        assert_eq!(back.body, frame.body);
    }
});
