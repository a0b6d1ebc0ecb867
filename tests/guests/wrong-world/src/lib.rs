//! A perfectly good component of some other world: not a scalewise policy.
wit_bindgen::generate!({
    inline: "package other:thing; world thing { export run: func() -> u32; }",
    world: "thing",
});

struct Thing;
impl Guest for Thing {
    fn run() -> u32 {
        7
    }
}
export!(Thing);
