import EvaluateTool

evaluateMain(Array(CommandLine.arguments.dropFirst()))
