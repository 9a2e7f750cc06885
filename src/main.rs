fn main() -> std::process::ExitCode {
    unroot::cli::main()
}
