fn main() {
    let set =
        hermes_warden::rules::load_rule_set(&hermes_warden::rules::builtin_sources()).unwrap();
    for r in set.rules() {
        println!("{} {:?} files={:?}", r.id, r.prefilter, r.files);
    }
}
