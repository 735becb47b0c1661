//! `aplaunch`: the binary is a thin shell around [`launcher::cli`].

fn main() -> std::process::ExitCode {
    launcher::cli::main()
}
