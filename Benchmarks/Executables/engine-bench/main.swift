import EngineBenchTool

engineBenchMain(Array(CommandLine.arguments.dropFirst()))
