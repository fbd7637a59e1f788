import KernelBenchTool

kernelBenchMain(Array(CommandLine.arguments.dropFirst()))
