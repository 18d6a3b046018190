fn main() -> std::process::ExitCode {
    fanout::main()
}
