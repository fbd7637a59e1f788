import SAPTool

sapMain(Array(CommandLine.arguments.dropFirst()))
