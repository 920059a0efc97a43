//! Fuzzes the EndpointPickerConfig loader: any input either fails with a `ConfigError` or
//! resolves to a configuration whose printed form loads back to the same configuration.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pointsman::config::{resolve, EndpointPickerConfig};
use pointsman::registry::Registry;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = EndpointPickerConfig::from_yaml(text) else { return };
    let registry = Registry::with_builtins();
    let Ok(resolved) = resolve(&config, &registry) else { return };
    let printed = resolved.config().to_yaml();
    let reparsed = EndpointPickerConfig::from_yaml(&printed).expect("a printed config parses");
    let again = resolve(&reparsed, &registry).expect("a printed config resolves");
    assert_eq!(again.config(), resolved.config(), "printing is a fixed point:\n{printed}");
});
