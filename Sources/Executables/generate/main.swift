import GenerateTool

generateMain(Array(CommandLine.arguments.dropFirst()))
