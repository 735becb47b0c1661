//! `aplaunch`: the binary is a thin shell around [`aplaunch::cli`].

fn main() -> std::process::ExitCode {
    aplaunch::cli::main()
}
