//! A strategy built against an incompatible future contract version.
wit_bindgen::generate!({
    inline: r#"
        package scalewise:policy@1.0.0;
        interface strategy-api {
            validate-config: func(settings: string) -> result<_, string>;
            evaluate: func(load: f64) -> f64;
        }
        world strategy { export strategy-api; }
    "#,
    world: "strategy",
});

struct Future;
impl exports::scalewise::policy::strategy_api::Guest for Future {
    fn validate_config(_: String) -> Result<(), String> {
        Ok(())
    }
    fn evaluate(load: f64) -> f64 {
        load * 2.0
    }
}
export!(Future);
