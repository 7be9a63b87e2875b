fn main() -> std::process::ExitCode {
    amar_server::cli::main()
}
